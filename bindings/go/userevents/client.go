package userevents

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/userevents/userevents/bindings/go/internal/confmap"
)

// Version returns the version of the linked libuserevents, e.g. "0.1.0".
func Version() string { return C.GoString(C.ue_version_str()) }

// EventID is the 16-byte UUIDv7 the library stamps on every event.
type EventID [16]byte

// String formats the id as the canonical 36-character UUID (ue_event_id_format).
func (id EventID) String() string {
	var out [37]C.char
	C.ue_event_id_format((*C.uint8_t)(unsafe.Pointer(&id[0])), &out[0])
	return C.GoString(&out[0])
}

// Event is one event to track. Only Type is required.
type Event struct {
	Type        string // [A-Za-z0-9._-], 1..200 characters; part of the topic name
	UserID      string // empty: the one given to Identify
	AnonymousID string // empty: the client's
	SessionID   string
	Timestamp   time.Time // zero: the time of Track
	ID          EventID   // zero: a new UUIDv7 (set it only to forward an event)
	// Properties: string, bool, any integer type (within int64), float32/float64 (finite).
	// Nested values (maps, slices, structs) are refused: the C API has only scalars.
	Properties map[string]any
	// Context fields by name: "app.name", "os.version", "screen.width", ... The client's
	// "context.*" configuration fills the fields an event leaves empty.
	Context map[string]string
}

// Outcome is what happened to one event (ue_outcome_t).
type Outcome int

const (
	Delivered   Outcome = 0 // acknowledged by Kafka (acks=all)
	FailedRetry Outcome = 1 // a send failed; the event will be sent again
	Failed      Outcome = 2 // failed permanently (e.g. too large); not retried
	Dropped     Outcome = 3 // dropped by a local policy (queue full, spool cap, shutdown)
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case FailedRetry:
		return "failed_retry"
	case Failed:
		return "failed"
	case Dropped:
		return "dropped"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Delivery is one outcome of one event, as the library reported it.
type Delivery struct {
	EventID EventID
	Type    string
	Outcome Outcome
	Err     error // nil when delivered; else an *Error with the reason
}

// Option configures NewClient beyond the library's key/value configuration.
type Option func(*options)

type options struct {
	deliveries int
	logger     *slog.Logger
}

// WithDeliveries turns on delivery reports: Client.Deliveries returns a channel with this
// much buffer. The library's background thread never waits for you: when the channel is
// full a report is dropped and counted (Client.DroppedDeliveries). The channel is closed
// by Close, after the last report.
func WithDeliveries(buffer int) Option { return func(o *options) { o.deliveries = buffer } }

// WithLogger sends the library's log lines to l (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Client is a libuserevents client (ue_client_t). All methods are safe to call from many
// goroutines at once. Close waits for calls in progress and makes later calls return
// ErrShutdown.
type Client struct {
	mu      sync.RWMutex // held shared by every call, exclusively by Close
	closing atomic.Bool  // set first by Close: later calls fail at once instead of waiting
	c       *C.ue_client_t
	st      *callbackState
	handle  cgo.Handle
	events  chan *C.ue_event_t // reusable ue_event_t, the cheap way to track many events
}

// callbackState is what the C callbacks reach through their cgo.Handle.
type callbackState struct {
	deliveries chan Delivery
	dropped    atomic.Uint64
	logger     *slog.Logger
}

const errstrSize = 512

// NewClient creates a client from configuration keys and values (see CONFIGURATION.md), e.g.
// {"kafka.bootstrap.servers": "127.0.0.1:9092", "spool.dir": "/var/lib/app/events"}. Each
// value is validated now: an unknown key is ErrConfUnknown, a bad value ErrConfInvalid.
func NewClient(config map[string]string, opts ...Option) (*Client, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	conf := C.ue_conf_new()
	if conf == nil {
		return nil, newError(C.UE_ERR_NOMEM, "ue_conf_new")
	}
	if err := setConfig(conf, config); err != nil {
		C.ue_conf_destroy(conf)
		return nil, err
	}
	st := &callbackState{logger: o.logger}
	if o.deliveries > 0 {
		st.deliveries = make(chan Delivery, o.deliveries)
	}
	h := cgo.NewHandle(st)
	C.ueg_conf_set_callbacks(conf, C.uintptr_t(h), cbool(st.deliveries != nil),
		cbool(st.logger != nil))
	var errstr [errstrSize]C.char
	c := C.ue_client_new(conf, &errstr[0], errstrSize)
	if c == nil {
		C.ue_conf_destroy(conf) // on failure we still own it
		h.Delete()
		return nil, &Error{Message: "cannot create client: " + C.GoString(&errstr[0])}
	}
	return &Client{c: c, st: st, handle: h, events: make(chan *C.ue_event_t, 64)}, nil
}

func setConfig(conf *C.ue_conf_t, config map[string]string) error {
	var errstr [errstrSize]C.char
	refused := confmap.Apply(config, func(k, v string) (int, string) {
		ck, cv := C.CString(k), C.CString(v)
		defer C.free(unsafe.Pointer(ck))
		defer C.free(unsafe.Pointer(cv))
		rc := C.ue_conf_set(conf, ck, cv, &errstr[0], errstrSize)
		return int(rc), C.GoString(&errstr[0])
	})
	if refused == nil {
		return nil
	}
	code := map[confmap.Kind]ErrorCode{confmap.NulByte: ErrInvalidArg,
		confmap.Invalid: ErrConfInvalid, confmap.Unknown: ErrConfUnknown}[refused.Kind]
	return &Error{code, fmt.Sprintf("configuration %q: %s", refused.Key, refused.Reason)}
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

var errClosed = &Error{ErrShutdown, "the client is closed"}

// Track tracks one event (ue_track): it never blocks on I/O. It returns the event id the
// library stamped (the one delivery reports carry).
//
// Errors: ErrInvalidArg (a value the library or Go-to-C conversion refused: bad type name,
// nested or non-finite property, NUL byte, ...), ErrQueueFull (dropped by policy, counted),
// ErrTooLarge, ErrShutdown.
func (c *Client) Track(ev Event) (EventID, error) {
	if c.closing.Load() {
		return EventID{}, errClosed
	}
	b := bufPool.Get().(*trackBuf)
	defer bufPool.Put(b)
	if err := b.build(&ev); err != nil {
		return EventID{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return EventID{}, errClosed
	}
	e := c.event()
	if e == nil {
		return EventID{}, newError(C.UE_ERR_NOMEM, "ue_event_new")
	}
	var ops *C.ueg_op_t
	if len(b.ops) > 0 {
		ops = &b.ops[0]
	}
	rc := C.ueg_track(c.c, e, (*C.char)(unsafe.Pointer(&b.buf[0])), ops, C.size_t(len(b.ops)),
		&b.failed, (*C.uint8_t)(unsafe.Pointer(&b.id[0])))
	c.release(e)
	if rc != C.UE_OK {
		return EventID{}, b.failure(rc, int(b.failed), ev.Type)
	}
	return b.id, nil
}

func (c *Client) event() *C.ue_event_t {
	select {
	case e := <-c.events:
		return e
	default:
		return C.ueg_event_new()
	}
}

func (c *Client) release(e *C.ue_event_t) {
	select {
	case c.events <- e:
	default:
		C.ue_event_destroy(e)
	}
}

// Identify sets the user id of later events that carry none ("" clears it). The Kafka key
// is the user id, else the anonymous id.
func (c *Client) Identify(userID string) error {
	if strings.IndexByte(userID, 0) >= 0 {
		return &Error{ErrInvalidArg, "user id contains a NUL byte"}
	}
	cs := C.CString(userID)
	defer C.free(unsafe.Pointer(cs))
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return errClosed
	}
	if rc := C.ue_identify(c.c, cs); rc != C.UE_OK {
		return newError(rc, "identify")
	}
	return nil
}

// AnonymousID returns the anonymous id of the client ("anonymous.id", else generated);
// "" after Close.
func (c *Client) AnonymousID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return ""
	}
	return C.GoString(C.ue_anonymous_id(c.c))
}

// Flush waits until every event tracked so far is delivered, failed or dropped, or until
// timeout passes (negative: no limit); then it returns ErrTimedOut. Delivery reports of the
// flushed events are on the Deliveries channel when it returns (unless dropped as full).
func (c *Client) Flush(timeout time.Duration) error {
	ms := C.int(-1)
	if timeout >= 0 {
		ms = C.int(min(int64(math.MaxInt32), int64((timeout+time.Millisecond-1)/time.Millisecond)))
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return errClosed
	}
	if rc := C.ue_flush(c.c, ms); rc != C.UE_OK {
		return newError(rc, "flush did not finish within "+timeout.String())
	}
	return nil
}

// Stats returns every statistic of the client (ue_stats_json), e.g. "tracked",
// "delivered", "dropped_queue_full".
func (c *Client) Stats() (map[string]int64, error) {
	c.mu.RLock()
	if c.c == nil {
		c.mu.RUnlock()
		return nil, errClosed
	}
	n := C.ue_stats_json(c.c, nil, 0)
	buf := make([]byte, n+1)
	n = C.ue_stats_json(c.c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	c.mu.RUnlock()
	stats := make(map[string]int64)
	if err := json.Unmarshal(buf[:min(int(n), len(buf)-1)], &stats); err != nil {
		return nil, fmt.Errorf("userevents: statistics: %w", err)
	}
	return stats, nil
}

// Deliveries returns the channel of delivery reports (nil without WithDeliveries). It is
// closed by Close after the last report.
func (c *Client) Deliveries() <-chan Delivery { return c.st.deliveries }

// DroppedDeliveries returns how many delivery reports were dropped because the Deliveries
// channel was full.
func (c *Client) DroppedDeliveries() uint64 { return c.st.dropped.Load() }

// Close flushes for up to "shutdown.timeout.ms", stops and frees the client
// (ue_client_destroy): events not acknowledged by then stay in the spool ("spool.dir"), or
// are reported Dropped. It waits for calls in progress; later calls return ErrShutdown.
// Closing twice is a no-op.
func (c *Client) Close() error {
	c.closing.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	if rc := C.ue_client_destroy(c.c); rc != C.UE_OK {
		return newError(rc, "close")
	}
	c.c = nil // the background thread is gone: no callback runs from here on
	for drained := false; !drained; {
		select {
		case e := <-c.events:
			C.ue_event_destroy(e)
		default:
			drained = true
		}
	}
	if c.st.deliveries != nil {
		close(c.st.deliveries)
	}
	c.handle.Delete()
	return nil
}
