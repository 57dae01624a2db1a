package enrich

// #include <stdlib.h>
// #include <enrich.h>
import "C"

import (
	"fmt"
	"sort"
	"strings"
	"unsafe"
)

const errstrSize = 512

// newConf is an enr_conf_t holding config, each key validated by enr_conf_set(); on error
// nothing is left allocated.
func newConf(config map[string]string) (*C.enr_conf_t, error) {
	conf := C.enr_conf_new()
	if conf == nil {
		return nil, newError(C.ENR_ERR_NOMEM, "enr_conf_new")
	}
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same error for the same bad map, every time
	var errstr [errstrSize]C.char
	for _, k := range keys {
		v := config[k]
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			C.enr_conf_destroy(conf)
			return nil, confError(ErrInvalidArg, k, "NUL byte in key or value")
		}
		ck, cv := C.CString(k), C.CString(v)
		rc := C.enr_conf_set(conf, ck, cv, &errstr[0], errstrSize)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if rc != C.ENR_CONF_OK {
			C.enr_conf_destroy(conf)
			code := ErrConfInvalid
			if rc == C.ENR_CONF_UNKNOWN {
				code = ErrConfUnknown
			}
			return nil, confError(code, k, C.GoString(&errstr[0]))
		}
	}
	return conf, nil
}

func confError(code ErrorCode, key, why string) *Error {
	return &Error{Code: code, Name: code.String(), Message: fmt.Sprintf("configuration %q: %s", key, why)}
}
