package whsink

// #include <stdint.h>
import "C"

import (
	"runtime/cgo"
	"sync"
)

// Commit is one partition of one batch the warehouse committed (whs_commit_cb_t).
type Commit struct {
	Topic       string
	Partition   int32
	NextOffset  int64 // the warehouse now holds everything before this offset
	Rows        int64 // rows of this partition in the batch
	DeadLetters int64 // records of this partition in the batch sent to the dead-letter topic
}

// callbacks is what the C callbacks reach through the sink's cgo.Handle.
type callbacks struct {
	commit func(Commit)
	error  func(err error, retriable bool)

	mu       sync.Mutex
	panicked any // a callback's panic, raised again by the driver call once C has returned
}

// Go code called from C must not panic through the C frames (the library would be left
// inside its callback); so a panic is kept and raised again by the Go caller of C.
func (cb *callbacks) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			cb.mu.Lock()
			if cb.panicked == nil {
				cb.panicked = r
			}
			cb.mu.Unlock()
		}
	}()
	f()
}

// rethrow panics with a callback's panic, if one happened during the last C call.
func (cb *callbacks) rethrow() {
	if cb == nil {
		return
	}
	cb.mu.Lock()
	r := cb.panicked
	cb.panicked = nil
	cb.mu.Unlock()
	if r != nil {
		panic(r)
	}
}

//export whsgCommit
func whsgCommit(topic *C.char, partition C.int32_t, nextOffset, rows, deadLetters C.int64_t,
	opaque C.uintptr_t) {
	cb := cgo.Handle(opaque).Value().(*callbacks)
	c := Commit{Topic: C.GoString(topic), Partition: int32(partition),
		NextOffset: int64(nextOffset), Rows: int64(rows), DeadLetters: int64(deadLetters)}
	cb.guard(func() { cb.commit(c) })
}

//export whsgError
func whsgError(code C.int, retriable C.int, reason *C.char, opaque C.uintptr_t) {
	cb := cgo.Handle(opaque).Value().(*callbacks)
	c := ErrorCode(code)
	err := &Error{Code: c, Name: c.String(), Message: C.GoString(reason)}
	cb.guard(func() { cb.error(err, retriable != 0) })
}
