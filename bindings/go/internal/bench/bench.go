// Package bench measures events/s tracked from Go with userevents beside franz-go producing
// the same events, to the same broker and topic layout (one topic per type, key = user id,
// headers ue-event-id and ue-schema-version) with the SDK's producer defaults (idempotent,
// acks=all, zstd, linger 5 ms). cmd/ue-bench prints the table; bench_test.go wraps it.
package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userevents/userevents/bindings/go/internal/schema"
	"github.com/userevents/userevents/bindings/go/userevents"
)

// Types and Users are the event mix: event i has type Types[i%3] and user Users[i%1000].
var (
	Types = []string{"page_view", "click", "purchase"}
	Users = func() []string {
		u := make([]string, 1000)
		for i := range u {
			u[i] = fmt.Sprintf("user-%04d", i)
		}
		return u
	}()
)

// Props are the properties of every event (one map per user would only cost the caller).
var Props = map[string]any{"path": "/pricing", "seq": 1, "price": 19.9, "logged_in": true}

// Result of one run: events per second of the caller's loop ("call") and until the last
// acknowledgement ("e2e"), and CPU of this process per event (all threads).
type Result struct {
	CallEPS, E2EEPS, CPUMicros float64
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func result(n int, t0, tCall, tEnd time.Time, cpu0 time.Duration) Result {
	return Result{float64(n) / tCall.Sub(t0).Seconds(), float64(n) / tEnd.Sub(t0).Seconds(),
		float64((cpuNow() - cpu0).Microseconds()) / float64(n)}
}

// Userevents tracks n events with the binding, to topics tag.<type>, until all are delivered.
func Userevents(bootstrap, tag string, n int) (Result, error) {
	c, err := userevents.NewClient(map[string]string{"kafka.bootstrap.servers": bootstrap,
		"topic.template": tag + ".{type}", "queue.max.events": fmt.Sprint(n + 10000),
		"queue.max.bytes": fmt.Sprint(1 << 30), "log.level": "error"})
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	track := func(count int) error {
		for i := 0; i < count; i++ {
			if _, err := c.Track(userevents.Event{Type: Types[i%3], UserID: Users[i%1000],
				Properties: Props}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := track(2000); err != nil { // warm-up: connections, topic metadata
		return Result{}, err
	}
	if err := c.Flush(time.Minute); err != nil {
		return Result{}, err
	}
	runtime.GC()
	cpu0, t0 := cpuNow(), time.Now()
	if err := track(n); err != nil {
		return Result{}, err
	}
	tCall := time.Now()
	if err := c.Flush(2 * time.Minute); err != nil {
		return Result{}, err
	}
	r := result(n, t0, tCall, time.Now(), cpu0)
	if s, _ := c.Stats(); s["delivered"] != int64(n+2000) {
		return r, fmt.Errorf("userevents delivered %d of %d", s["delivered"], n+2000)
	}
	return r, nil
}

// Payloads are events encoded beforehand with the .proto (the same fields the SDK writes),
// for the franz-go side: payload i is event i%len of the mix.
type Payload struct {
	Value, ID []byte
}

// MakePayloads encodes count events of the mix (count a multiple of 3000 keeps type and user
// of event i equal to the SDK side's).
func MakePayloads(count int) ([]Payload, error) {
	anon := make([]byte, 16)
	rand.Read(anon)
	out := make([]Payload, count)
	for i := range out {
		ev := &schema.Event{Type: Types[i%3], UserID: Users[i%1000],
			AnonymousID: fmt.Sprintf("%x", anon), TimestampMs: time.Now().UnixMilli(),
			SchemaVersion: 1, Properties: map[string]any{"path": "/pricing", "seq": int64(1),
				"price": 19.9, "logged_in": true},
			Context: map[string]any{"library_name": "libuserevents",
				"library_version": userevents.Version()}}
		rand.Read(ev.ID[:])
		b, err := schema.Encode(ev)
		if err != nil {
			return nil, err
		}
		out[i] = Payload{b, append([]byte(nil), ev.ID[:]...)}
	}
	return out, nil
}

// FranzGo produces n pre-encoded events with franz-go to topics tag.<type>, until all are
// acknowledged.
func FranzGo(bootstrap, tag string, n int, payloads []Payload) (Result, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.AllowAutoTopicCreation())
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	var failed atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	}
	schemaVersion := []byte("1")
	produce := func(count int) {
		for i := 0; i < count; i++ {
			p := &payloads[i%len(payloads)]
			cl.Produce(context.Background(), &kgo.Record{Topic: tag + "." + Types[i%3],
				Key: []byte(Users[i%1000]), Value: p.Value, Headers: []kgo.RecordHeader{
					{Key: "ue-event-id", Value: p.ID}, {Key: "ue-schema-version", Value: schemaVersion}}},
				promise)
		}
	}
	produce(2000)
	if err := cl.Flush(context.Background()); err != nil {
		return Result{}, err
	}
	runtime.GC()
	cpu0, t0 := cpuNow(), time.Now()
	produce(n)
	tCall := time.Now()
	if err := cl.Flush(context.Background()); err != nil {
		return Result{}, err
	}
	r := result(n, t0, tCall, time.Now(), cpu0)
	if failed.Load() > 0 {
		return r, fmt.Errorf("franz-go: %d failed, first: %v", failed.Load(), firstErr.Load())
	}
	return r, nil
}
