package userevents

// #include <stdint.h>
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
	"unsafe"
)

// The C library calls these from its background thread (deliveries) or from whichever thread
// logs; shim.c passes them the client's cgo.Handle. Neither blocks: a full Deliveries
// channel drops the report and counts it.

//export uegDelivery
func uegDelivery(eventID *C.uint8_t, typ *C.char, outcome C.int, reason C.int, reasonStr *C.char,
	opaque C.uintptr_t) {
	st := cgo.Handle(opaque).Value().(*callbackState)
	d := Delivery{Type: C.GoString(typ), Outcome: Outcome(outcome)}
	copy(d.EventID[:], unsafe.Slice((*byte)(unsafe.Pointer(eventID)), 16))
	if reason != 0 {
		code := ErrorCode(reason)
		msg := C.GoString(reasonStr)
		if msg == "" {
			msg = code.Error()
		}
		d.Err = &Error{Code: code, Message: msg}
	}
	select {
	case st.deliveries <- d:
	default:
		st.dropped.Add(1)
	}
}

//export uegLog
func uegLog(level C.int, message *C.char, opaque C.uintptr_t) {
	st := cgo.Handle(opaque).Value().(*callbackState)
	lvl := slog.LevelInfo
	switch {
	case level <= 3:
		lvl = slog.LevelError
	case level == 4:
		lvl = slog.LevelWarn
	case level >= 7:
		lvl = slog.LevelDebug
	}
	st.logger.Log(context.Background(), lvl, C.GoString(message), "lib", "userevents")
}
