package whsink_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userevents/userevents/bindings/go/whsink"
)

// nowhere: a sink whose broker never answers (closed port): creating and closing it needs
// none, only the SQLite file.
func nowhere(t *testing.T) map[string]string {
	return map[string]string{"kafka.bootstrap.servers": "127.0.0.1:9",
		"warehouse.url": "sqlite:" + filepath.Join(t.TempDir(), "w.db"), "log.level": "error"}
}

// The Go constants carry the numbers of whsink.h: each one's name comes from whs_err2name().
func TestErrorCodesHaveTheLibrarysNames(t *testing.T) {
	want := map[whsink.ErrorCode]string{
		whsink.ErrInvalidArg: "WHS_ERR_INVALID_ARG", whsink.ErrConfUnknown: "WHS_ERR_CONF_UNKNOWN",
		whsink.ErrConfInvalid: "WHS_ERR_CONF_INVALID", whsink.ErrNoMem: "WHS_ERR_NOMEM",
		whsink.ErrTimedOut: "WHS_ERR_TIMED_OUT", whsink.ErrRecursiveCall: "WHS_ERR_RECURSIVE_CALL",
		whsink.ErrClosed: "WHS_ERR_CLOSED", whsink.ErrKafkaInit: "WHS_ERR_KAFKA_INIT",
		whsink.ErrMapping: "WHS_ERR_MAPPING", whsink.ErrWarehouse: "WHS_ERR_WAREHOUSE",
		whsink.ErrWarehouseRejected: "WHS_ERR_WAREHOUSE_REJECTED", whsink.ErrFenced: "WHS_ERR_FENCED",
		whsink.ErrKafka: "WHS_ERR_KAFKA", whsink.ErrDeadLetter: "WHS_ERR_DEAD_LETTER",
		whsink.ErrKafkaFatal: "WHS_ERR_KAFKA_FATAL",
	}
	for code, name := range want {
		if code.String() != name {
			t.Errorf("code %d: %q, want %s", int(code), code.String(), name)
		}
	}
}

func TestBadConfigIsRefusedNamingTheKey(t *testing.T) {
	cases := []struct {
		key, val string
		code     whsink.ErrorCode
	}{
		{"no.such.key", "1", whsink.ErrConfUnknown},
		{"batch.max.rows", "0", whsink.ErrConfInvalid},
		{"table", "1; DROP TABLE x", whsink.ErrConfInvalid},
		{"topic", "a\x00b", whsink.ErrInvalidArg},
	}
	for _, c := range cases {
		conf := nowhere(t)
		conf[c.key] = c.val
		s, err := whsink.NewSink(conf)
		var e *whsink.Error
		if s != nil || !errors.Is(err, c.code) || !errors.As(err, &e) || e.Name != c.code.String() ||
			!strings.Contains(err.Error(), `"`+c.key+`"`) {
			t.Errorf("%s=%q: %v, %v", c.key, c.val, s, err)
		}
	}
}

// whs_sink_new() fails without a warehouse: an *Error with the library's reason, no code.
func TestMissingWarehouseFailsNewSink(t *testing.T) {
	s, err := whsink.NewSink(map[string]string{"kafka.bootstrap.servers": "127.0.0.1:9"})
	var e *whsink.Error
	if s != nil || !errors.As(err, &e) || e.Code != 0 || e.Message == "" {
		t.Fatalf("NewSink = %v, %v", s, err)
	}
}

func TestNilSinkReturnsErrClosed(t *testing.T) {
	var s *whsink.Sink
	if _, err := s.Poll(0); !errors.Is(err, whsink.ErrClosed) {
		t.Errorf("Poll: %v", err)
	}
	if err := s.Run(); !errors.Is(err, whsink.ErrClosed) {
		t.Errorf("Run: %v", err)
	}
	if err := s.Flush(0); !errors.Is(err, whsink.ErrClosed) {
		t.Errorf("Flush: %v", err)
	}
	if err := s.Close(0); !errors.Is(err, whsink.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
	if _, err := s.Stat("rows_loaded"); !errors.Is(err, whsink.ErrClosed) {
		t.Errorf("Stat: %v", err)
	}
	s.Stop()
	if s.Stats() != nil || s.KafkaStats() != nil {
		t.Error("statistics of a nil sink")
	}
}

// Guarantee: Close works once; after it every call says ErrClosed instead of crashing.
func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	s, err := whsink.NewSink(nowhere(t), whsink.WithCommitCallback(func(whsink.Commit) {}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Poll(10 * time.Millisecond); n != 0 || err != nil {
		t.Fatalf("Poll: %d, %v", n, err)
	}
	if st := s.Stats(); st == nil || st["rows_loaded"] != 0 {
		t.Fatalf("Stats: %v", st)
	}
	if _, err := s.Stat("no_such_stat"); !errors.Is(err, whsink.ErrInvalidArg) {
		t.Fatalf("Stat(no_such_stat): %v", err)
	}
	if err := s.Close(5 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(time.Second); !errors.Is(err, whsink.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Poll(0); !errors.Is(err, whsink.ErrClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
	if err := s.Flush(0); !errors.Is(err, whsink.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if s.Stats() != nil {
		t.Fatal("Stats after Close")
	}
	s.Stop()
}

// Guarantee: Close from another goroutine ends a Run in progress.
func TestCloseEndsARunInProgress(t *testing.T) {
	s, err := whsink.NewSink(nowhere(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run() }()
	if err := s.Close(5 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil && !errors.Is(err, whsink.ErrClosed) {
		t.Fatalf("Run: %v", err)
	}
}
