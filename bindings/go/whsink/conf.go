package whsink

// #include <stdlib.h>
// #include <whsink.h>
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/userevents/userevents/bindings/go/internal/confmap"
)

const errstrSize = 512

// newConf is an whs_conf_t holding config, each key validated by whs_conf_set(); on error
// nothing is left allocated.
func newConf(config map[string]string) (*C.whs_conf_t, error) {
	conf := C.whs_conf_new()
	if conf == nil {
		return nil, newError(ErrNoMem, "whs_conf_new")
	}
	var errstr [errstrSize]C.char
	refused := confmap.Apply(config, func(k, v string) (int, string) {
		ck, cv := C.CString(k), C.CString(v)
		defer C.free(unsafe.Pointer(ck))
		defer C.free(unsafe.Pointer(cv))
		rc := C.whs_conf_set(conf, ck, cv, &errstr[0], errstrSize)
		return int(rc), C.GoString(&errstr[0])
	})
	if refused != nil {
		C.whs_conf_destroy(conf)
		code := map[confmap.Kind]ErrorCode{confmap.NulByte: ErrInvalidArg,
			confmap.Invalid: ErrConfInvalid, confmap.Unknown: ErrConfUnknown}[refused.Kind]
		return nil, confError(code, refused.Key, refused.Reason)
	}
	return conf, nil
}

func confError(code ErrorCode, key, why string) *Error {
	return &Error{Code: code, Name: code.String(), Message: fmt.Sprintf("configuration %q: %s", key, why)}
}
