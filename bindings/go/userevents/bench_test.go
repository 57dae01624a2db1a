package userevents_test

// go test -run '^$' -bench . ./userevents (under test/kafka.sh run): events/s of Track until
// delivered, and of franz-go producing the same events; cmd/ue-bench prints both with their
// ratio from one run.

import (
	"fmt"
	"testing"

	"github.com/userevents/userevents/bindings/go/internal/bench"
	"github.com/userevents/userevents/bindings/go/internal/testkafka"
)

func reportEPS(b *testing.B, r bench.Result) {
	b.ReportMetric(r.E2EEPS, "events/s")
	b.ReportMetric(r.CPUMicros*1000, "cpu-ns/event")
	b.ReportMetric(1e9/r.E2EEPS, "ns/op")
}

func BenchmarkTrackUntilDelivered(b *testing.B) {
	bs := testkafka.Bootstrap(b)
	r, err := bench.Userevents(bs, fmt.Sprintf("%s.n%d", testkafka.Prefix(), b.N), b.N)
	if err != nil {
		b.Fatal(err)
	}
	reportEPS(b, r)
}

func BenchmarkFranzGoProduceSameEvents(b *testing.B) {
	bs := testkafka.Bootstrap(b)
	payloads, err := bench.MakePayloads(3000)
	if err != nil {
		b.Fatal(err)
	}
	r, err := bench.FranzGo(bs, fmt.Sprintf("%s.n%d", testkafka.Prefix(), b.N), b.N, payloads)
	if err != nil {
		b.Fatal(err)
	}
	reportEPS(b, r)
}
