package whsink_test

// Guarantee: events tracked from Go reach the warehouse exactly once through the enrich
// processor and the sink, each checked with an independent reader (franz-go + the .proto for
// the enriched topic, SQLite itself for the table).

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userevents/userevents/bindings/go/enrich"
	"github.com/userevents/userevents/bindings/go/internal/schema"
	"github.com/userevents/userevents/bindings/go/internal/sqlitecheck"
	"github.com/userevents/userevents/bindings/go/internal/testkafka"
	"github.com/userevents/userevents/bindings/go/userevents"
	"github.com/userevents/userevents/bindings/go/whsink"
)

const events = 2000

func TestTrackedEventsReachTheWarehouseOnce(t *testing.T) {
	bs := testkafka.Bootstrap(t)
	prefix := testkafka.Prefix()
	ids := track(t, bs, prefix)
	enriched := prefix + ".enriched"
	runEnrich(t, bs, prefix, enriched)
	checkEnrichedTopic(t, enriched, ids)
	db := filepath.Join(t.TempDir(), "w.db")
	runSink(t, bs, prefix, enriched, db)
	checkTable(t, db, ids)
}

// track sends the events with the Go SDK, to "<prefix>.ev.<type>", and returns their ids.
func track(t *testing.T, bs, prefix string) map[string]bool {
	c, err := userevents.NewClient(map[string]string{"kafka.bootstrap.servers": bs,
		"topic.template": prefix + ".ev.{type}", "log.level": "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids := make(map[string]bool, events)
	for i := 0; i < events; i++ {
		id, err := c.Track(userevents.Event{Type: []string{"page_view", "purchase"}[i%2],
			UserID:  fmt.Sprintf("user-%02d", i%20),
			Context: map[string]string{"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[id.String()] = true
	}
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return ids
}

// runEnrich runs a processor on its own goroutine until it consumed every event, then closes
// it (which commits the last transaction).
func runEnrich(t *testing.T, bs, prefix, output string) {
	p, err := enrich.NewProcessor(map[string]string{
		"kafka.bootstrap.servers": bs,
		"group.id":                prefix + "-enrich",
		"input.topics":            "^" + prefix + `\.ev\..*`,
		"output.topic":            output,
		"dead_letter.topic":       prefix + ".dlq",
		"aggregates.topic":        prefix + ".agg",
		"alerts.topic":            prefix + ".alerts",
		"stages":                  "dedup,clock,useragent,session",
		"txn.max.events":          "500",
		"log.level":               "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run() }()
	consumed := func() bool {
		n, err := p.Stat("consumed")
		if err != nil {
			t.Fatal(err)
		}
		return n >= events
	}
	testkafka.Await(t, 90*time.Second, "enrich consumed", consumed, func() {
		select { // Run ended early: its error is the failure
		case err := <-done:
			t.Fatalf("Run returned before the events were consumed: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	})
	if err := p.Close(30 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func checkEnrichedTopic(t *testing.T, topic string, ids map[string]bool) {
	seen := map[string]bool{}
	for _, r := range testkafka.Consume(t, []string{topic}, events) {
		e, err := schema.DecodeEnriched(r.Value)
		if err != nil {
			t.Fatalf("%s/%d@%d does not decode: %v", r.Topic, r.Partition, r.Offset, err)
		}
		id := userevents.EventID(e.Event.ID).String()
		if !ids[id] || seen[id] {
			t.Fatalf("enriched event %s unknown or twice", id)
		}
		if e.SessionID == "" || e.EnrichVersion == 0 {
			t.Fatalf("event %s not enriched: %+v", id, e)
		}
		seen[id] = true
	}
	if len(seen) != len(ids) {
		t.Fatalf("%d of %d events on the enriched topic", len(seen), len(ids))
	}
}

// runSink polls a sink on this goroutine, so the callbacks run here, until every row is
// loaded; the callbacks also check what may and may not be called from inside them.
func runSink(t *testing.T, bs, prefix, topic, db string) {
	var rows, commits atomic.Int64
	var s *whsink.Sink
	var insideErr error
	onCommit := func(c whsink.Commit) {
		if c.Topic != topic || c.NextOffset <= 0 {
			t.Errorf("commit %+v", c)
		}
		rows.Add(c.Rows)
		if commits.Add(1) == 1 {
			_, statErr := s.Stat("rows_loaded") // allowed: any goroutine
			if err := s.Close(0); !errors.Is(err, whsink.ErrRecursiveCall) || statErr != nil {
				insideErr = fmt.Errorf("inside the callback: Close = %v, Stat = %v", err, statErr)
			}
		}
	}
	onError := func(err error, retriable bool) { t.Logf("sink error (retriable %v): %v", retriable, err) }
	s, err := whsink.NewSink(map[string]string{
		"kafka.bootstrap.servers": bs,
		"kafka.group.id":          prefix + "-sink",
		"warehouse.url":           "sqlite:" + db,
		"topic":                   topic,
		"dead_letter.topic":       prefix + ".sink.dlq",
		"batch.max.ms":            "200",
		"log.level":               "error",
	}, whsink.WithCommitCallback(onCommit), whsink.WithErrorCallback(onError))
	if err != nil {
		t.Fatal(err)
	}
	loaded := func() bool {
		n, err := s.Stat("rows_loaded")
		if err != nil {
			t.Fatal(err)
		}
		return n >= events
	}
	testkafka.Await(t, 90*time.Second, "sink rows_loaded", loaded, func() {
		if _, err := s.Poll(100 * time.Millisecond); err != nil {
			t.Fatalf("Poll: %v", err)
		}
	})
	if err := s.Flush(10 * time.Second); err != nil { // the commit reports of the last batch
		t.Fatalf("Flush: %v", err)
	}
	if err := s.Close(30 * time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if insideErr != nil {
		t.Fatal(insideErr)
	}
	if rows.Load() != events {
		t.Fatalf("commit callbacks counted %d rows in %d commits, want %d", rows.Load(), commits.Load(), events)
	}
}

func checkTable(t *testing.T, db string, ids map[string]bool) {
	got, err := sqlitecheck.Column(db, "events", "event_id")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if !ids[id] || seen[id] {
			t.Fatalf("row %s unknown or twice", id)
		}
		seen[id] = true
	}
	if len(seen) != len(ids) {
		t.Fatalf("%d of %d events in the table", len(seen), len(ids))
	}
}
