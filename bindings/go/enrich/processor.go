package enrich

// #include <stdlib.h>
// #include <enrich.h>
import "C"

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userevents/userevents/bindings/go/internal/millis"
)

// Version returns the version of the linked libenrich, e.g. "0.1.0".
func Version() string { return C.GoString(C.enr_version_str()) }

// Processor is a libenrich processor (enr_processor_t): raw event topics in, enriched topic
// out, exactly once.
//
// Goroutines: Poll and Run drive the processor, one goroutine at a time (enrich.h); a second
// driver waits for the first to return. Stop, Stat, Stats and KafkaStats may be called from
// any goroutine. Close stops a Run or Poll in progress, waits for it, then frees the
// processor; every later call returns ErrClosed. There is no finalizer: call Close.
type Processor struct {
	mu      sync.RWMutex // shared by every call using p, exclusive in Close (which frees it)
	drive   sync.Mutex   // Poll, Run and Close: the C object has one driving thread at a time
	closing atomic.Bool  // set first by Close: later calls fail at once instead of waiting
	p       *C.enr_processor_t
}

// NewProcessor creates a processor from configuration keys and values (CONFIGURATION.md,
// section libenrich), e.g. {"kafka.bootstrap.servers": "127.0.0.1:9092", "stages":
// "dedup,clock,session"}. Each value is validated first: an unknown key is ErrConfUnknown, a
// bad value ErrConfInvalid, both naming the key. It then connects, restores stage state and
// joins the group (enr_processor_new).
func NewProcessor(config map[string]string) (*Processor, error) {
	conf, err := newConf(config)
	if err != nil {
		return nil, err
	}
	var errstr [errstrSize]C.char
	p := C.enr_processor_new(conf, &errstr[0], errstrSize)
	if p == nil {
		C.enr_conf_destroy(conf) // taken on success only
		return nil, &Error{Message: "cannot create processor: " + C.GoString(&errstr[0])}
	}
	return &Processor{p: p}, nil
}

// Poll does one step (enr_poll): consumes what is available within timeout, processes it and
// commits the transaction when due. It returns the number of input records processed.
// Errors: ErrStopped after Stop, ErrFenced, ErrKafka (fatal: Close next), ErrClosed.
func (p *Processor) Poll(timeout time.Duration) (int, error) {
	if p == nil || p.closing.Load() {
		return 0, ErrClosed
	}
	p.drive.Lock()
	defer p.drive.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.p == nil {
		return 0, ErrClosed
	}
	n := C.enr_poll(p.p, C.int(millis.From(timeout)))
	if n < 0 {
		return 0, newError(n, "poll")
	}
	return int(n), nil
}

// Run polls until Stop or Close (then it returns nil) or a fatal error (enr_run). It blocks:
// run it on a goroutine of its own.
func (p *Processor) Run() error {
	if p == nil || p.closing.Load() {
		return ErrClosed
	}
	p.drive.Lock()
	defer p.drive.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.p == nil {
		return ErrClosed
	}
	if rc := C.enr_run(p.p); rc != C.ENR_OK {
		return newError(C.int(rc), "run")
	}
	return nil
}

// Stop asks Run, or a Poll in progress, to return (enr_stop); later Polls return ErrStopped.
// Any goroutine; a no-op on a closed processor. Nothing is committed here: call Close.
func (p *Processor) Stop() {
	if p == nil {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.p != nil {
		C.enr_stop(p.p)
	}
}

// Close stops the processor, commits what was processed within timeout (at least 1 ms),
// leaves the group and frees it (enr_processor_destroy). Uncommitted work is aborted and
// redone by the next instance. A second Close returns ErrClosed.
func (p *Processor) Close(timeout time.Duration) error {
	if p == nil {
		return ErrClosed
	}
	p.closing.Store(true)
	p.Stop() // a Run in progress returns, so that the driver lock below is free
	p.drive.Lock()
	defer p.drive.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		return ErrClosed
	}
	rc := C.enr_processor_destroy(p.p, C.int(millis.From(timeout)))
	p.p = nil
	if rc != C.ENR_OK {
		return newError(C.int(rc), "close")
	}
	return nil
}

// KafkaStats returns the latest librdkafka statistics of the processor's consumer, a JSON
// object (enr_kafka_stats_json); nil before the first one, when they are off or after Close.
// Any goroutine.
func (p *Processor) KafkaStats() []byte {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.p == nil {
		return nil
	}
	buf := make([]byte, 64<<10)
	for {
		n := int(C.enr_kafka_stats_json(p.p, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
		if n == 0 {
			return nil
		}
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, n+4096) // it grew meanwhile: the header says to retry
	}
}
