package enrich_test

// Life cycle of a processor on the real broker (test/kafka.sh).

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/userevents/userevents/bindings/go/enrich"
	"github.com/userevents/userevents/bindings/go/internal/testkafka"
)

func newProcessor(t *testing.T, kv ...string) *enrich.Processor {
	t.Helper()
	prefix := testkafka.Prefix()
	conf := map[string]string{
		"kafka.bootstrap.servers": testkafka.Bootstrap(t),
		"group.id":                prefix + "-enrich",
		"input.topics":            "^" + prefix + `\.ev\..*`,
		"output.topic":            prefix + ".enriched",
		"dead_letter.topic":       prefix + ".dlq",
		"aggregates.topic":        prefix + ".agg",
		"alerts.topic":            prefix + ".alerts",
		"stages":                  "dedup,clock,useragent,session",
		"log.level":               "error",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		conf[kv[i]] = kv[i+1]
	}
	p, err := enrich.NewProcessor(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	return p
}

// Guarantee: Stop from another goroutine ends Run with nil; later Polls say ErrStopped;
// Close works once, then every call says ErrClosed.
func TestStopEndsRunAndCloseIsOnce(t *testing.T) {
	p := newProcessor(t)
	if _, err := p.Poll(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- p.Run() }()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // the any-goroutine calls, raced against Run under -race
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Stat("consumed"); err != nil {
				t.Error(err)
			}
			_ = p.Stats()
			_ = p.KafkaStats()
		}()
	}
	wg.Wait()
	p.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after Stop: %v", err)
	}
	if _, err := p.Poll(0); !errors.Is(err, enrich.ErrStopped) {
		t.Fatalf("Poll after Stop: %v", err)
	}
	if err := p.Close(5 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(time.Second); err != enrich.ErrClosed {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Poll(0); err != enrich.ErrClosed {
		t.Fatalf("Poll after Close: %v", err)
	}
	if _, err := p.Stat("consumed"); err != enrich.ErrClosed {
		t.Fatalf("Stat after Close: %v", err)
	}
	if p.Stats() != nil || p.KafkaStats() != nil {
		t.Fatal("statistics after Close")
	}
	p.Stop() // a no-op, not a crash
}

// Guarantee: Close from another goroutine ends a Run in progress and frees the processor.
func TestCloseEndsARunInProgress(t *testing.T) {
	p := newProcessor(t)
	done := make(chan error)
	go func() { done <- p.Run() }()
	if err := p.Close(5 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Run either ran and was stopped by Close (nil) or started after it (ErrClosed).
	if err := <-done; err != nil && err != enrich.ErrClosed {
		t.Fatalf("Run: %v", err)
	}
}

func TestStatNamesAreTheLibrarys(t *testing.T) {
	p := newProcessor(t)
	stats := p.Stats()
	for _, name := range []string{"consumed", "enriched", "dropped", "dead_letters", "txn_commits"} {
		if _, ok := stats[name]; !ok {
			t.Errorf("Stats has no %q: %v", name, stats)
		}
	}
	if _, err := p.Stat("no_such_counter"); !errors.Is(err, enrich.ErrInvalidArg) {
		t.Fatalf("Stat(no_such_counter): %v", err)
	}
}

func TestUnknownStageIsRefused(t *testing.T) {
	_, err := enrich.NewProcessor(map[string]string{
		"kafka.bootstrap.servers": testkafka.Bootstrap(t), "stages": "clock,nope",
		"log.level": "error"})
	if err == nil {
		t.Fatal("a processor with an unknown stage")
	}
	t.Log(err)
}
