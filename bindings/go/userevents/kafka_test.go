package userevents_test

// Events tracked from Go against the real broker (test/kafka.sh), read back by an independent
// consumer (franz-go) and decoded with proto/userevents.proto (internal/schema).

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userevents/userevents/bindings/go/internal/cmem"
	"github.com/userevents/userevents/bindings/go/internal/testkafka"
	"github.com/userevents/userevents/bindings/go/userevents"
)

var types = []string{"page_view", "purchase"}

func topics(prefix string, ts ...string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = prefix + "." + t
	}
	return out
}

// sortByLog orders records as the broker holds them: per topic and partition, by offset.
func sortByLog(recs []record) {
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
}

// Guarantee: every event tracked from Go arrives exactly once, keyed by user id, in per-user
// order, with every field as tracked.
func TestEventsArriveOnceInUserOrderAndDecode(t *testing.T) {
	prefix := testkafka.Prefix()
	c := kafkaClient(t, prefix)
	const n, users = 3000, 20
	type want struct {
		typ, user string
		props     map[string]any
	}
	tracked := map[userevents.EventID]want{}
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("user-%02d", i%users)
		props := map[string]any{"seq": int64(i / users), "price": float64(i) / 4,
			"paid": i%2 == 0, "sku": "A-" + strconv.Itoa(i)}
		id, err := c.Track(userevents.Event{Type: types[i%2], UserID: user, SessionID: "s-1",
			Properties: props, Context: map[string]string{"os.name": "linux", "screen.width": "1280"}})
		if err != nil {
			t.Fatal(err)
		}
		tracked[id] = want{types[i%2], user, props}
	}
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Stats(); s["delivered"] != n {
		t.Fatalf("stats %v", s)
	}

	recs := consumeAll(t, topics(prefix, types...), n)
	if len(recs) != n {
		t.Fatalf("%d records for %d events", len(recs), n)
	}
	seen := map[userevents.EventID]bool{}
	lastSeq := map[string]int64{}
	sortByLog(recs)
	for _, r := range recs {
		id := userevents.EventID(r.ev.ID)
		w, ok := tracked[id]
		if !ok || seen[id] {
			t.Fatalf("event %s unknown or twice", id)
		}
		seen[id] = true
		if r.Topic != prefix+"."+w.typ || r.ev.Type != w.typ || string(r.Key) != w.user ||
			r.ev.UserID != w.user || r.ev.SessionID != "s-1" || r.ev.SchemaVersion != 1 {
			t.Fatalf("record %s/%d@%d = %+v, want %+v", r.Topic, r.Partition, r.Offset, r.ev, w)
		}
		for k, v := range w.props {
			if r.ev.Properties[k] != v {
				t.Fatalf("property %s = %v (%T), want %v (%T)", k, r.ev.Properties[k], r.ev.Properties[k], v, v)
			}
		}
		if r.ev.Context["app_name"] != "gotest" || r.ev.Context["os_name"] != "linux" ||
			r.ev.Context["screen_width"] != uint32(1280) {
			t.Fatalf("context %v", r.ev.Context)
		}
		key := r.Topic + "/" + w.user
		seq := w.props["seq"].(int64)
		if last, ok := lastSeq[key]; ok && seq <= last {
			t.Fatalf("%s: seq %d after %d: out of order", key, seq, last)
		}
		lastSeq[key] = seq
	}
}

func TestDeliveryReportsOncePerEvent(t *testing.T) {
	c := kafkaClient(t, testkafka.Prefix(), userevents.WithDeliveries(1000))
	ids := map[userevents.EventID]bool{}
	for i := 0; i < 500; i++ {
		id, err := c.Track(userevents.Event{Type: "click", UserID: fmt.Sprintf("u%d", i%5)})
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		var d userevents.Delivery
		select {
		case d = <-c.Deliveries():
		case <-time.After(10 * time.Second):
			t.Fatalf("%d reports of 500 after Flush", i)
		}
		if !ids[d.EventID] || d.Outcome != userevents.Delivered || d.Err != nil || d.Type != "click" {
			t.Fatalf("report %+v", d)
		}
		delete(ids, d.EventID)
	}
	select {
	case d := <-c.Deliveries():
		t.Fatalf("extra report %+v", d)
	default:
	}
	if c.DroppedDeliveries() != 0 {
		t.Fatalf("%d reports dropped", c.DroppedDeliveries())
	}
}

// A Client shared by goroutines: every event arrives once; each goroutine's user in order.
func TestManyGoroutinesShareAClient(t *testing.T) {
	prefix := testkafka.Prefix()
	c := kafkaClient(t, prefix, userevents.WithDeliveries(4096))
	const goroutines, each = 8, 300
	var delivered int
	done := make(chan struct{})
	go func() { // reads reports while the others track
		defer close(done)
		for d := range c.Deliveries() {
			if d.Outcome == userevents.Delivered {
				delivered++
			}
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := c.Track(userevents.Event{Type: "page_view", UserID: fmt.Sprintf("g-%d", g),
					Properties: map[string]any{"seq": i}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-done
	if delivered != goroutines*each {
		t.Fatalf("%d delivered of %d", delivered, goroutines*each)
	}
	recs := consumeAll(t, topics(prefix, "page_view"), goroutines*each)
	sortByLog(recs)
	seqs := map[string][]int64{}
	ids := map[[16]byte]bool{}
	for _, r := range recs {
		ids[r.ev.ID] = true
		seqs[r.ev.UserID] = append(seqs[r.ev.UserID], r.ev.Properties["seq"].(int64))
	}
	if len(recs) != goroutines*each || len(ids) != len(recs) {
		t.Fatalf("%d records, %d distinct ids, want %d", len(recs), len(ids), goroutines*each)
	}
	for user, s := range seqs {
		for i, v := range s {
			if v != int64(i) {
				t.Fatalf("%s: seq %v...: not in order", user, s[:i+1])
			}
		}
	}
}

func TestIdentifySetsUserIDAndKeyOfLaterEvents(t *testing.T) {
	prefix := testkafka.Prefix()
	c := kafkaClient(t, prefix)
	c.Track(userevents.Event{Type: "login"})
	if err := c.Identify("user-42"); err != nil {
		t.Fatal(err)
	}
	c.Track(userevents.Event{Type: "login"})
	c.Identify("")
	c.Track(userevents.Event{Type: "login"})
	anon := c.AnonymousID()
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, topics(prefix, "login"), 3)
	users := map[string]int{}
	for _, r := range recs {
		users[r.ev.UserID]++
		key := r.ev.UserID
		if key == "" {
			key = anon
		}
		if string(r.Key) != key || r.ev.AnonymousID != anon {
			t.Fatalf("record key %q user %q anon %q (client anon %q)", r.Key, r.ev.UserID, r.ev.AnonymousID, anon)
		}
	}
	if len(recs) != 3 || users["user-42"] != 1 || users[""] != 2 {
		t.Fatalf("users %v", users)
	}
}

func rssBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	pages, _ := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// No leak over 100k events, after a warm-up: the C heap in use (mallinfo2, every arena) and
// the Go heap stay flat, and the process RSS stays within the memory the configuration allows
// in flight. (RSS alone cannot show a leak: malloc keeps the memory of the fullest moment of
// the queue, in per-thread arenas.)
func TestNoLeakOver100kEvents(t *testing.T) {
	// At most 8 MiB queued (Track waits for room) and 10k events inside librdkafka.
	c := mustClient(t, map[string]string{"kafka.bootstrap.servers": testkafka.Bootstrap(t),
		"topic.template": testkafka.Prefix() + ".{type}", "log.level": "error",
		"queue.max.bytes": fmt.Sprint(8 << 20), "queue.full.policy": "block",
		"queue.block.timeout.ms": "10000", "kafka.queue.buffering.max.messages": "10000"},
		userevents.WithDeliveries(1<<16))
	var delivered int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range c.Deliveries() {
			if d.Outcome == userevents.Delivered {
				delivered++
			}
		}
	}()
	props := map[string]any{"path": "/pricing", "n": 1, "price": 9.5, "ok": true}
	users := make([]string, 100)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	type mem struct{ rss, goHeap, cHeap int64 }
	measure := func() mem {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return mem{rssBytes(t), int64(m.HeapAlloc), cmem.InUse()}
	}
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.Track(userevents.Event{Type: "page_view", UserID: users[i%100], Properties: props}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	run(20_000) // warm-up: connections, buffers, pools
	m0 := measure()
	run(100_000)
	m1 := measure()
	if s, _ := c.Stats(); s["delivered"] != 120_000 {
		t.Fatalf("stats %v", s)
	}
	c.Close()
	<-done
	const KiB, MiB = 1 << 10, 1 << 20
	t.Logf("over 100k events: C heap %+d KiB (%d KiB in use), Go heap %+d KiB, RSS %+.1f MiB (%.1f MiB)",
		(m1.cHeap-m0.cHeap)/KiB, m1.cHeap/KiB, (m1.goHeap-m0.goHeap)/KiB,
		float64(m1.rss-m0.rss)/MiB, float64(m1.rss)/MiB)
	if delivered+int(c.DroppedDeliveries()) != 120_000 {
		t.Fatalf("%d delivered + %d reports dropped, want 120000", delivered, c.DroppedDeliveries())
	}
	if m1.cHeap-m0.cHeap > 1*MiB { // 10 bytes per event
		t.Errorf("C heap grew %d KiB over 100k events", (m1.cHeap-m0.cHeap)/KiB)
	}
	if m1.goHeap-m0.goHeap > 1*MiB {
		t.Errorf("Go heap grew %d KiB over 100k events", (m1.goHeap-m0.goHeap)/KiB)
	}
	if !raceEnabled && m1.rss-m0.rss > 32*MiB { // the race detector's shadow memory grows RSS
		t.Errorf("RSS grew %.1f MiB over 100k events", float64(m1.rss-m0.rss)/MiB)
	}
}
