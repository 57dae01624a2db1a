package userevents_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userevents/userevents/bindings/go/internal/schema"
	"github.com/userevents/userevents/bindings/go/userevents"
)

// nowhere: a client that can never deliver (closed port), for tests that need no broker.
var nowhere = map[string]string{"kafka.bootstrap.servers": "127.0.0.1:9",
	"shutdown.timeout.ms": "100", "log.level": "error"}

func withConf(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func mustClient(t testing.TB, conf map[string]string, opts ...userevents.Option) *userevents.Client {
	t.Helper()
	c, err := userevents.NewClient(conf, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bootstrap is the broker of test/kafka.sh run (KAFKA_BOOTSTRAP); the test is skipped without.
func bootstrap(t testing.TB) string {
	t.Helper()
	bs := os.Getenv("KAFKA_BOOTSTRAP")
	if bs == "" {
		t.Skip("KAFKA_BOOTSTRAP is not set: run under test/kafka.sh run -- go test ./...")
	}
	return bs
}

// topicPrefix is unique per test, so every test has topics of its own.
func topicPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "got" + hex.EncodeToString(b[:])
}

func kafkaClient(t testing.TB, prefix string, opts ...userevents.Option) *userevents.Client {
	return mustClient(t, map[string]string{"kafka.bootstrap.servers": bootstrap(t),
		"topic.template": prefix + ".{type}", "log.level": "error",
		"context.app.name": "gotest"}, opts...)
}

type record struct {
	*kgo.Record
	ev *schema.Event
}

// consumeAll reads topics from the start with franz-go (no consumer group) until want records
// came, then one more second to catch any duplicate, and decodes each with the .proto.
func consumeAll(t testing.TB, topics []string, want int) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap(t), ",")...),
		kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []record
	poll := func(ctx context.Context) {
		fetches := cl.PollFetches(ctx)
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				t.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			ev, err := schema.Decode(r.Value)
			if err != nil {
				t.Fatalf("record %s/%d@%d does not decode: %v", r.Topic, r.Partition, r.Offset, err)
			}
			out = append(out, record{r, ev})
		})
	}
	deadline, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(out) < want && deadline.Err() == nil {
		poll(deadline)
	}
	grace, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	for grace.Err() == nil {
		poll(grace)
	}
	return out
}
