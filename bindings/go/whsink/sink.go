package whsink

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"

	"github.com/userevents/userevents/bindings/go/internal/millis"
)

// Version returns the version of the linked libwhsink, e.g. "0.1.0".
func Version() string { return C.GoString(C.whs_version_str()) }

// Option configures NewSink beyond the library's key/value configuration.
type Option func(*callbacks)

// WithCommitCallback calls f once per partition of each batch the warehouse committed. It
// runs on the goroutine calling Poll, Run, Flush or Close, from inside that call.
func WithCommitCallback(f func(Commit)) Option { return func(c *callbacks) { c.commit = f } }

// WithErrorCallback calls f for each failure the sink handles on its own (a warehouse write
// to retry, a dead-lettered record, a fenced batch, a Kafka error); err is an *Error,
// retriable says whether the sink retries it. Same goroutine as the commit callback.
func WithErrorCallback(f func(err error, retriable bool)) Option {
	return func(c *callbacks) { c.error = f }
}

// Sink is a libwhsink sink (whs_sink_t): the enriched topic into a warehouse, exactly once.
//
// Goroutines: Poll, Run, Flush and Close drive the sink, one goroutine at a time (whsink.h);
// a second driver waits for the first to return. Stop, Stat, Stats and KafkaStats may be
// called from any goroutine, callbacks included. Close stops a Run in progress, waits for it,
// then flushes and frees the sink; later calls return ErrClosed. From inside a callback,
// Poll, Run, Flush and Close return ErrRecursiveCall. There is no finalizer: call Close.
type Sink struct {
	mu      sync.RWMutex // shared by every call using s, exclusive in Close (which frees it)
	drive   sync.Mutex   // Poll, Run, Flush, Close: one driving thread at a time
	closing atomic.Bool  // set first by Close: later calls fail at once instead of waiting
	s       *C.whs_sink_t
	cb      *callbacks // nil without callbacks
	handle  cgo.Handle
}

// NewSink opens the warehouse ("warehouse.url", e.g. "sqlite:/var/lib/w.db"), creates or
// evolves the table, and subscribes to "topic" (whs_sink_new). Configuration keys are in
// CONFIGURATION.md, section libwhsink; an unknown key is ErrConfUnknown, a bad value
// ErrConfInvalid, both naming the key. Nothing is consumed before the first Poll or Run.
func NewSink(config map[string]string, opts ...Option) (*Sink, error) {
	cb := &callbacks{}
	for _, opt := range opts {
		opt(cb)
	}
	conf, err := newConf(config)
	if err != nil {
		return nil, err
	}
	sink := &Sink{}
	if cb.commit != nil || cb.error != nil {
		sink.cb, sink.handle = cb, cgo.NewHandle(cb)
		C.whsg_conf_set_callbacks(conf, C.uintptr_t(sink.handle), cbool(cb.commit != nil),
			cbool(cb.error != nil))
	}
	var errstr [errstrSize]C.char
	sink.s = C.whs_sink_new(conf, &errstr[0], errstrSize)
	if sink.s == nil {
		C.whs_conf_destroy(conf) // taken on success only
		if sink.cb != nil {
			sink.handle.Delete()
		}
		return nil, &Error{Message: "cannot create sink: " + C.GoString(&errstr[0])}
	}
	return sink, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// recursive is ErrRecursiveCall from inside one of this sink's callbacks, checked before
// taking the locks that the callback's driver call holds.
func (s *Sink) recursive() error {
	if s.cb != nil && C.whsg_in_callback(C.uintptr_t(s.handle)) != 0 {
		return newError(ErrRecursiveCall, "called from a callback of the same sink")
	}
	return nil
}

// driven runs f, a driver call, with the locks held; then raises a callback's panic.
func (s *Sink) driven(f func(*C.whs_sink_t) C.int) (C.int, error) {
	if s == nil || s.closing.Load() {
		return 0, errClosed
	}
	if err := s.recursive(); err != nil {
		return 0, err
	}
	s.drive.Lock()
	defer s.drive.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return 0, errClosed
	}
	rc := f(s.s)
	s.cb.rethrow()
	return rc, nil
}

// Poll does up to timeout of work (whs_poll): reports finished commits and errors through
// the callbacks, consumes records and hands full or old batches to the writer. It returns the
// number of records consumed. Errors: ErrClosed, ErrRecursiveCall, ErrKafkaFatal.
func (s *Sink) Poll(timeout time.Duration) (int, error) {
	rc, err := s.driven(func(cs *C.whs_sink_t) C.int { return C.whs_poll(cs, C.int(millis.From(timeout))) })
	if err != nil {
		return 0, err
	}
	if rc < 0 {
		return 0, newError(ErrorCode(rc), "poll")
	}
	return int(rc), nil
}

// Run polls until Stop or Close (then it returns nil) or a fatal error (whs_run). It blocks:
// run it on a goroutine of its own.
func (s *Sink) Run() error {
	rc, err := s.driven(func(cs *C.whs_sink_t) C.int { return C.int(C.whs_run(cs)) })
	if err == nil && rc != C.WHS_OK {
		err = newError(ErrorCode(rc), "run")
	}
	return err
}

// Flush hands everything consumed so far to the warehouse and waits until it is committed
// or timeout passes (negative: no limit); then it returns ErrTimedOut and the work goes on.
func (s *Sink) Flush(timeout time.Duration) error {
	rc, err := s.driven(func(cs *C.whs_sink_t) C.int { return C.int(C.whs_flush(cs, C.int(millis.From(timeout)))) })
	if err == nil && rc != C.WHS_OK {
		err = newError(ErrorCode(rc), "flush within "+timeout.String())
	}
	return err
}

// Stop asks Run, or a Poll in progress, to return (whs_stop). Any goroutine; a no-op on a
// closed sink. Nothing is flushed here: call Close.
func (s *Sink) Stop() {
	if s == nil {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s != nil {
		C.whs_stop(s.s)
	}
}

// Close stops the sink, flushes what is batched and waits for the warehouse commit within
// timeout (negative: "shutdown.timeout.ms"), leaves the group and frees the sink (whs_close,
// whs_sink_destroy). What missed the deadline is re-read by the next sink (ErrTimedOut).
// A second Close returns ErrClosed.
func (s *Sink) Close(timeout time.Duration) error {
	if s == nil {
		return errClosed
	}
	if err := s.recursive(); err != nil {
		return err
	}
	s.closing.Store(true)
	s.Stop() // a Run in progress returns, so that the driver lock below is free
	s.drive.Lock()
	defer s.drive.Unlock()
	s.mu.RLock() // shared while whs_close() runs callbacks: they may call Stat or Stop
	if s.s == nil {
		s.mu.RUnlock()
		return errClosed
	}
	rc := C.whs_close(s.s, C.int(millis.From(timeout)))
	s.mu.RUnlock()
	s.mu.Lock()
	C.whs_sink_destroy(s.s)
	s.s = nil
	s.mu.Unlock()
	if s.cb != nil {
		s.handle.Delete() // no callback runs after whs_sink_destroy()
	}
	s.cb.rethrow()
	if rc != C.WHS_OK {
		return newError(ErrorCode(rc), "close")
	}
	return nil
}
