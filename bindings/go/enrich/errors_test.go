package enrich_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/userevents/userevents/bindings/go/enrich"
)

// The Go constants carry the numbers of enrich.h: each one's name comes from enr_err2name().
func TestErrorCodesHaveTheLibrarysNames(t *testing.T) {
	want := map[enrich.ErrorCode]string{
		enrich.ErrInvalidArg: "ENR_ERR_INVALID_ARG", enrich.ErrConfUnknown: "ENR_ERR_CONF_UNKNOWN",
		enrich.ErrConfInvalid: "ENR_ERR_CONF_INVALID", enrich.ErrNoMem: "ENR_ERR_NOMEM",
		enrich.ErrStage: "ENR_ERR_STAGE", enrich.ErrDecode: "ENR_ERR_DECODE",
		enrich.ErrSchema: "ENR_ERR_SCHEMA", enrich.ErrTooLarge: "ENR_ERR_TOO_LARGE",
		enrich.ErrTimedOut: "ENR_ERR_TIMED_OUT", enrich.ErrTransport: "ENR_ERR_TRANSPORT",
		enrich.ErrRecursiveCall: "ENR_ERR_RECURSIVE_CALL", enrich.ErrStopped: "ENR_ERR_STOPPED",
		enrich.ErrFenced: "ENR_ERR_FENCED", enrich.ErrKafka: "ENR_ERR_KAFKA",
		enrich.ErrKafkaFatal: "ENR_ERR_KAFKA_FATAL", enrich.ErrSelfFenced: "ENR_ERR_SELF_FENCED",
	}
	for code, name := range want {
		if code.String() != name || code.Error() == "" || code.Error() == "unknown error" {
			t.Errorf("code %d: %q / %q, want %s", int(code), code.String(), code.Error(), name)
		}
	}
}

func TestUnknownConfigKeyIsRefusedNamingTheKey(t *testing.T) {
	p, err := enrich.NewProcessor(map[string]string{"group.id": "g", "no.such.key": "1"})
	var e *enrich.Error
	if p != nil || !errors.Is(err, enrich.ErrConfUnknown) || !errors.As(err, &e) ||
		e.Name != "ENR_ERR_CONF_UNKNOWN" || !strings.Contains(err.Error(), `"no.such.key"`) {
		t.Fatalf("NewProcessor = %v, %v", p, err)
	}
}

func TestBadConfigValueIsRefusedNamingTheKey(t *testing.T) {
	for key, val := range map[string]string{"txn.max.events": "0", "anomaly.key": "colour",
		"stages": "dedup\x00clock"} {
		_, err := enrich.NewProcessor(map[string]string{key: val})
		if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("%s=%q: %v", key, val, err)
		}
		if key == "txn.max.events" && !errors.Is(err, enrich.ErrConfInvalid) {
			t.Errorf("%s: %v is not ErrConfInvalid", key, err)
		}
	}
}

// A nil processor fails like a closed one instead of crashing.
func TestNilProcessorReturnsErrClosed(t *testing.T) {
	var p *enrich.Processor
	if _, err := p.Poll(0); err != enrich.ErrClosed {
		t.Errorf("Poll: %v", err)
	}
	if err := p.Run(); err != enrich.ErrClosed {
		t.Errorf("Run: %v", err)
	}
	if _, err := p.Stat("consumed"); err != enrich.ErrClosed {
		t.Errorf("Stat: %v", err)
	}
	if err := p.Close(0); err != enrich.ErrClosed {
		t.Errorf("Close: %v", err)
	}
	p.Stop()
	if p.Stats() != nil || p.KafkaStats() != nil {
		t.Error("statistics of a nil processor")
	}
}
