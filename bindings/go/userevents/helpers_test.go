package userevents_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userevents/userevents/bindings/go/internal/schema"
	"github.com/userevents/userevents/bindings/go/internal/testkafka"
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

func kafkaClient(t testing.TB, prefix string, opts ...userevents.Option) *userevents.Client {
	return mustClient(t, map[string]string{"kafka.bootstrap.servers": testkafka.Bootstrap(t),
		"topic.template": prefix + ".{type}", "log.level": "error",
		"context.app.name": "gotest"}, opts...)
}

type record struct {
	*kgo.Record
	ev *schema.Event
}

// consumeAll reads topics from the start until want records came, then one more second to
// catch any duplicate, and decodes each with the .proto.
func consumeAll(t testing.TB, topics []string, want int) []record {
	t.Helper()
	var out []record
	for _, r := range testkafka.Consume(t, topics, want) {
		ev, err := schema.Decode(r.Value)
		if err != nil {
			t.Fatalf("record %s/%d@%d does not decode: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, record{r, ev})
	}
	return out
}
