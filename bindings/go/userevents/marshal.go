package userevents

// #include "shim.h"
import "C"

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
)

// trackBuf is one Track's arguments laid out for ueg_track(): every string NUL-terminated in
// buf (the type first), and one op per field. Pooled: a steady stream allocates nothing here.
type trackBuf struct {
	buf    []byte
	ops    []C.ueg_op_t
	id     EventID   // out: the stamped event id
	failed C.int64_t // out: which op failed
}

var bufPool = sync.Pool{New: func() any {
	return &trackBuf{buf: make([]byte, 0, 512), ops: make([]C.ueg_op_t, 0, 16)}
}}

func argError(format string, args ...any) error {
	return &Error{ErrInvalidArg, fmt.Sprintf(format, args...)}
}

// str appends s with its NUL and returns its offset; what names s in the error (built only
// on failure: this is the hot path).
func (b *trackBuf) str(s string, what func() string) (C.int64_t, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return 0, argError("%s contains a NUL byte", what())
	}
	off := len(b.buf)
	b.buf = append(append(b.buf, s...), 0)
	return C.int64_t(off), nil
}

func label(s string) func() string { return func() string { return s } }

func quoted(what, name string) func() string {
	return func() string { return fmt.Sprintf("%s %q", what, name) }
}

func (b *trackBuf) op(kind int, key, val C.int64_t) {
	b.ops = append(b.ops, C.ueg_op_t{kind: C.int64_t(kind), key: key, val: val})
}

// strOp adds a field whose value is a string (and, for properties and context, a key).
func (b *trackBuf) strOp(kind int, key, val string, what func() string) error {
	var k C.int64_t
	var err error
	if kind == C.UEG_PROP_STRING || kind == C.UEG_CONTEXT {
		if k, err = b.str(key, func() string { return what() + " name" }); err != nil {
			return err
		}
	}
	v, err := b.str(val, what)
	if err == nil {
		b.op(kind, k, v)
	}
	return err
}

func (b *trackBuf) build(ev *Event) error {
	b.buf, b.ops = b.buf[:0], b.ops[:0]
	if _, err := b.str(ev.Type, label("event type")); err != nil {
		return err
	}
	for _, f := range [...]struct {
		kind       int
		val, label string
	}{{C.UEG_USER_ID, ev.UserID, "user id"}, {C.UEG_ANONYMOUS_ID, ev.AnonymousID, "anonymous id"},
		{C.UEG_SESSION_ID, ev.SessionID, "session id"}} {
		if f.val != "" {
			if err := b.strOp(f.kind, "", f.val, label(f.label)); err != nil {
				return err
			}
		}
	}
	if !ev.Timestamp.IsZero() {
		b.op(C.UEG_TIMESTAMP_MS, 0, C.int64_t(ev.Timestamp.UnixMilli()))
	}
	if ev.ID != (EventID{}) {
		off := len(b.buf)
		b.buf = append(b.buf, ev.ID[:]...)
		b.op(C.UEG_EVENT_ID, 0, C.int64_t(off))
	}
	for k, v := range ev.Properties {
		if err := b.property(k, v); err != nil {
			return err
		}
	}
	for k, v := range ev.Context {
		if err := b.strOp(C.UEG_CONTEXT, k, v, quoted("context", k)); err != nil {
			return err
		}
	}
	return nil
}

func (b *trackBuf) numOp(kind int, key string, val C.int64_t) error {
	k, err := b.str(key, label("property name"))
	if err == nil {
		b.op(kind, k, val)
	}
	return err
}

func (b *trackBuf) property(key string, v any) error {
	switch x := v.(type) {
	case string:
		return b.strOp(C.UEG_PROP_STRING, key, x, quoted("property", key))
	case bool:
		return b.numOp(C.UEG_PROP_BOOL, key, C.int64_t(cbool(x)))
	case int:
		return b.numOp(C.UEG_PROP_INT, key, C.int64_t(x))
	case int64:
		return b.numOp(C.UEG_PROP_INT, key, C.int64_t(x))
	case int32:
		return b.numOp(C.UEG_PROP_INT, key, C.int64_t(x))
	case float64:
		return b.numOp(C.UEG_PROP_DOUBLE, key, C.int64_t(math.Float64bits(x)))
	case float32:
		return b.numOp(C.UEG_PROP_DOUBLE, key, C.int64_t(math.Float64bits(float64(x))))
	}
	return b.propertyReflect(key, v)
}

// propertyReflect handles the other integer types and named types (type Cents int64).
func (b *trackBuf) propertyReflect(key string, v any) error {
	if v == nil {
		return argError("property %q: nil is not a property value", key)
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String:
		return b.property(key, r.String())
	case reflect.Bool:
		return b.property(key, r.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return b.property(key, r.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if r.Uint() > math.MaxInt64 {
			return argError("property %q: %d does not fit in int64", key, r.Uint())
		}
		return b.property(key, int64(r.Uint()))
	case reflect.Float32, reflect.Float64:
		return b.property(key, r.Float())
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		return argError("property %q: nested values (%T) are not supported: the C API takes "+
			"only string, integer, float and bool; flatten it (\"cart.total\") or encode it "+
			"as a JSON string", key, v)
	}
	return argError("property %q: a %T is not a property value (string, integer, float, bool)",
		key, v)
}

// failure is the error of a failed ueg_track(): which field the library refused.
func (b *trackBuf) failure(rc C.ue_err_t, failed int, typ string) error {
	switch {
	case failed < 0:
		return newError(rc, fmt.Sprintf("event type %q refused ([A-Za-z0-9._-], 1..200 characters)", typ))
	case failed >= len(b.ops):
		return newError(rc, fmt.Sprintf("event %q not tracked", typ))
	}
	op := b.ops[failed]
	cstr := func(off C.int64_t) string {
		end := int(off)
		for end < len(b.buf) && b.buf[end] != 0 {
			end++
		}
		return string(b.buf[off:end])
	}
	switch op.kind {
	case C.UEG_PROP_STRING, C.UEG_PROP_INT, C.UEG_PROP_DOUBLE, C.UEG_PROP_BOOL:
		return newError(rc, fmt.Sprintf("property %q refused (empty name, or a float that is not finite)", cstr(op.key)))
	case C.UEG_CONTEXT:
		return newError(rc, fmt.Sprintf("context %q = %q refused (unknown field, or a screen size that is not a number)",
			cstr(op.key), cstr(op.val)))
	case C.UEG_TIMESTAMP_MS:
		return newError(rc, fmt.Sprintf("timestamp %d ms refused", int64(op.val)))
	}
	return newError(rc, "event field refused")
}
