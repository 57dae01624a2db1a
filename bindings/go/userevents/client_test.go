package userevents_test

// The binding's own behaviour, no broker needed: arguments, errors, lifecycle, goroutines.
// Clients point at a closed port; nothing here waits for a delivery.

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userevents/userevents/bindings/go/userevents"
)

func TestErrorCodesMatchLibraryNames(t *testing.T) {
	names := map[userevents.ErrorCode]string{
		userevents.ErrInvalidArg: "INVALID_ARG", userevents.ErrConfUnknown: "CONF_UNKNOWN",
		userevents.ErrConfInvalid: "CONF_INVALID", userevents.ErrNoMem: "NOMEM",
		userevents.ErrQueueFull: "QUEUE_FULL", userevents.ErrTimedOut: "TIMED_OUT",
		userevents.ErrSpool: "SPOOL", userevents.ErrSpoolLocked: "SPOOL_LOCKED",
		userevents.ErrTransport: "TRANSPORT", userevents.ErrForked: "FORKED",
		userevents.ErrRecursiveCall: "RECURSIVE_CALL", userevents.ErrEncode: "ENCODE",
		userevents.ErrTooLarge: "TOO_LARGE", userevents.ErrShutdown: "SHUTDOWN",
		userevents.ErrSpoolFull: "SPOOL_FULL", userevents.ErrSpoolExpired: "SPOOL_EXPIRED",
		userevents.ErrTypeReserved: "TYPE_RESERVED", userevents.ErrBroker: "BROKER",
	}
	for code, name := range names {
		if got := code.String(); got != "UE_ERR_"+name {
			t.Errorf("code %d is %s in the library, %s here", int(code), got, name)
		}
	}
	if userevents.Version() == "" {
		t.Error("no version")
	}
}

func TestUnknownConfigKeyIsErrConfUnknown(t *testing.T) {
	_, err := userevents.NewClient(map[string]string{"no.such.key": "1"})
	if !errors.Is(err, userevents.ErrConfUnknown) {
		t.Fatalf("err = %v, want ErrConfUnknown", err)
	}
	var e *userevents.Error
	if !errors.As(err, &e) || e.Code != userevents.ErrConfUnknown || !strings.Contains(e.Message, "no.such.key") {
		t.Fatalf("err = %#v", err)
	}
}

func TestInvalidConfigValueIsErrConfInvalidWithLibraryMessage(t *testing.T) {
	_, err := userevents.NewClient(map[string]string{"linger.ms": "soon"})
	if !errors.Is(err, userevents.ErrConfInvalid) || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("err = %v", err)
	}
}

func TestClientCreationFailureSaysWhy(t *testing.T) {
	dir := t.TempDir()
	mustClient(t, withConf(nowhere, "spool.dir", dir))
	_, err := userevents.NewClient(withConf(nowhere, "spool.dir", dir)) // spool locked
	var e *userevents.Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "cannot create client") {
		t.Fatalf("err = %v", err)
	}
}

func TestTrackReturnsTheStampedUUIDv7(t *testing.T) {
	c := mustClient(t, nowhere)
	id, err := c.Track(userevents.Event{Type: "page_view", UserID: "u1",
		Properties: map[string]any{"path": "/"}})
	if err != nil {
		t.Fatal(err)
	}
	if id[6]>>4 != 7 || len(id.String()) != 36 {
		t.Fatalf("id %s is not a UUIDv7", id)
	}
	given := userevents.EventID{1, 2, 3, 4, 5, 6, 0x70, 8, 0x80, 10, 11, 12, 13, 14, 15, 16}
	if got, err := c.Track(userevents.Event{Type: "t", ID: given}); err != nil || got != given {
		t.Fatalf("given id: %s, %v", got, err)
	}
}

func TestBadArgumentsAreErrInvalidArgWithClearMessages(t *testing.T) {
	c := mustClient(t, nowhere)
	type cents int64
	cases := []struct {
		name string
		ev   userevents.Event
		msg  string
	}{
		{"empty type", userevents.Event{Type: ""}, "event type"},
		{"space in type", userevents.Event{Type: "has space"}, "event type"},
		{"long type", userevents.Event{Type: strings.Repeat("x", 201)}, "event type"},
		{"nested map", userevents.Event{Type: "t", Properties: map[string]any{"p": map[string]any{"a": 1}}}, "nested values"},
		{"nested slice", userevents.Event{Type: "t", Properties: map[string]any{"p": []int{1}}}, "nested values"},
		{"nil", userevents.Event{Type: "t", Properties: map[string]any{"p": nil}}, "nil is not"},
		{"chan", userevents.Event{Type: "t", Properties: map[string]any{"p": make(chan int)}}, "not a property value"},
		{"NaN", userevents.Event{Type: "t", Properties: map[string]any{"p": math.NaN()}}, `property "p"`},
		{"Inf", userevents.Event{Type: "t", Properties: map[string]any{"p": math.Inf(1)}}, `property "p"`},
		{"empty key", userevents.Event{Type: "t", Properties: map[string]any{"": 1}}, `property ""`},
		{"uint64", userevents.Event{Type: "t", Properties: map[string]any{"p": uint64(math.MaxUint64)}}, "int64"},
		{"NUL", userevents.Event{Type: "t", UserID: "a\x00b"}, "NUL"},
		{"context field", userevents.Event{Type: "t", Context: map[string]string{"no.such": "x"}}, `context "no.such"`},
		{"screen size", userevents.Event{Type: "t", Context: map[string]string{"screen.width": "wide"}}, "screen"},
		{"timestamp", userevents.Event{Type: "t", Timestamp: time.UnixMilli(-5)}, "timestamp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Track(tc.ev)
			if !errors.Is(err, userevents.ErrInvalidArg) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrInvalidArg mentioning %q", err, tc.msg)
			}
		})
	}
	_, err := c.Track(userevents.Event{Type: "t", Properties: map[string]any{
		"a": cents(5), "b": uint8(1), "c": float32(1.5), "d": true, "e": "s", "f": int64(math.MinInt64)},
		Context: map[string]string{"screen.width": "1280", "app.name": "shop"}})
	if err != nil {
		t.Fatalf("scalar kinds refused: %v", err)
	}
}

func TestStatsHaveTheLibraryKeys(t *testing.T) {
	c := mustClient(t, nowhere)
	c.Track(userevents.Event{Type: "t"})
	s, err := c.Stats()
	if err != nil || s["tracked"] != 1 || len(s) < 16 {
		t.Fatalf("stats %v, %v", s, err)
	}
	if _, ok := s["dropped_queue_full"]; !ok {
		t.Fatalf("no dropped_queue_full in %v", s)
	}
}

func TestAnonymousIDFromConfig(t *testing.T) {
	c := mustClient(t, withConf(nowhere, "anonymous.id", "anon-1"))
	if c.AnonymousID() != "anon-1" {
		t.Fatal(c.AnonymousID())
	}
}

func TestCallsAfterCloseAreErrShutdownAndCloseTwiceIsFine(t *testing.T) {
	c, err := userevents.NewClient(nowhere, userevents.WithDeliveries(8))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Track(userevents.Event{Type: "t"}); !errors.Is(err, userevents.ErrShutdown) {
		t.Fatalf("Track after Close: %v", err)
	}
	if err := c.Flush(0); !errors.Is(err, userevents.ErrShutdown) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := c.Identify("u"); !errors.Is(err, userevents.ErrShutdown) {
		t.Fatalf("Identify after Close: %v", err)
	}
	if _, err := c.Stats(); !errors.Is(err, userevents.ErrShutdown) {
		t.Fatalf("Stats after Close: %v", err)
	}
	if _, open := <-c.Deliveries(); open {
		t.Fatal("Deliveries still open after Close")
	}
}

func TestFlushTimeoutIsErrTimedOut(t *testing.T) {
	c := mustClient(t, nowhere)
	c.Track(userevents.Event{Type: "t"})
	if err := c.Flush(50 * time.Millisecond); !errors.Is(err, userevents.ErrTimedOut) {
		t.Fatalf("err = %v", err)
	}
}

func TestUndeliveredEventsAreReportedDroppedOnClose(t *testing.T) {
	c, err := userevents.NewClient(nowhere, userevents.WithDeliveries(16))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[userevents.EventID]bool{}
	for i := 0; i < 3; i++ {
		id, _ := c.Track(userevents.Event{Type: "t", UserID: "u"})
		ids[id] = true
	}
	c.Close()
	n := 0
	for d := range c.Deliveries() {
		n++
		if !ids[d.EventID] || d.Outcome != userevents.Dropped || d.Type != "t" ||
			!errors.Is(d.Err, userevents.ErrShutdown) {
			t.Fatalf("report %+v", d)
		}
	}
	if n != 3 {
		t.Fatalf("%d reports for 3 events", n)
	}
}

func TestFullDeliveryChannelDropsAndCountsWithoutBlocking(t *testing.T) {
	c, err := userevents.NewClient(nowhere, userevents.WithDeliveries(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		c.Track(userevents.Event{Type: "t"})
	}
	c.Close() // would hang if the library's thread waited for the channel
	got := 0
	for range c.Deliveries() {
		got++
	}
	if got != 1 || c.DroppedDeliveries() != 9 {
		t.Fatalf("%d reports, %d dropped; want 1 and 9", got, c.DroppedDeliveries())
	}
}

func TestQueueFullIsErrQueueFull(t *testing.T) {
	c := mustClient(t, withConf(nowhere, "queue.max.events", "1",
		"kafka.queue.buffering.max.messages", "1", "linger.ms", "1000"))
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_, err = c.Track(userevents.Event{Type: "t"})
	}
	if !errors.Is(err, userevents.ErrQueueFull) {
		t.Fatalf("err = %v", err)
	}
	if s, _ := c.Stats(); s["dropped_queue_full"] < 1 {
		t.Fatalf("stats %v", s)
	}
}

func TestGoroutinesTrackingWhileClosingNeverCrash(t *testing.T) {
	c, err := userevents.NewClient(nowhere)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < 2000; i++ {
				_, err := c.Track(userevents.Event{Type: "t", UserID: "u", Properties: map[string]any{"i": i}})
				if errors.Is(err, userevents.ErrShutdown) {
					return
				}
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		}(g)
	}
	close(start)
	time.Sleep(5 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
