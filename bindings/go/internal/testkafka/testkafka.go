// Package testkafka holds what the broker tests of the three packages share: the
// broker of test/kafka.sh, unique topic names, waiting for a condition, and reading a topic
// back with franz-go (an independent client, read_committed).
package testkafka

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
)

// Bootstrap is the broker of test/kafka.sh run (KAFKA_BOOTSTRAP); the test is skipped without.
func Bootstrap(t testing.TB) string {
	t.Helper()
	bs := os.Getenv("KAFKA_BOOTSTRAP")
	if bs == "" {
		t.Skip("KAFKA_BOOTSTRAP is not set: run under test/kafka.sh run -- go test ./...")
	}
	return bs
}

// Prefix is unique per call, so every test has topics and groups of its own.
func Prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "got" + hex.EncodeToString(b[:])
}

// Await calls step until done returns true, failing the test after timeout. step does the
// work that moves things on (a Poll) or waits a little for another goroutine's.
func Await(t testing.TB, timeout time.Duration, what string, done func() bool, step func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s", what, timeout)
		}
		step()
	}
}

// Consume reads topics from the start, committed records only, until want records came, then
// one more second to catch any extra one.
func Consume(t testing.TB, topics []string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(Bootstrap(t), ",")...),
		kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	poll := func(ctx context.Context) {
		fetches := cl.PollFetches(ctx)
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				t.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		out = append(out, fetches.Records()...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(out) < want && ctx.Err() == nil {
		poll(ctx)
	}
	grace, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	for grace.Err() == nil {
		poll(grace)
	}
	return out
}
