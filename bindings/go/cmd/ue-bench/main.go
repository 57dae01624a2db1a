// Command ue-bench prints events/s tracked from Go with userevents beside franz-go producing
// the same events in the same run (see internal/bench), and their ratio.
//
//	KAFKA_BOOTSTRAP=host:port go run ./cmd/ue-bench [-events N] [-reps R]
//
// bindings/bench.sh starts a broker and runs this and the Python benchmark.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"

	"github.com/userevents/userevents/bindings/go/internal/bench"
	"github.com/userevents/userevents/bindings/go/userevents"
)

func median(rs []bench.Result, f func(bench.Result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func main() {
	events := flag.Int("events", 200000, "events per run")
	reps := flag.Int("reps", 3, "runs per side (interleaved; medians reported)")
	flag.Parse()
	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
	if bootstrap == "" {
		fmt.Fprintln(os.Stderr, "KAFKA_BOOTSTRAP is not set (bindings/bench.sh starts a broker)")
		os.Exit(2)
	}
	payloads, err := bench.MakePayloads(3000)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sides := []string{"userevents", "franz-go raw"}
	results := map[string][]bench.Result{}
	runID := rand.Uint32()
	for rep := 0; rep < *reps; rep++ {
		for k, side := range sides {
			tag := fmt.Sprintf("gob%08xr%ds%d", runID, rep, k)
			var r bench.Result
			if side == "userevents" {
				r, err = bench.Userevents(bootstrap, tag, *events)
			} else {
				r, err = bench.FranzGo(bootstrap, tag, *events, payloads)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", side, err)
				os.Exit(1)
			}
			results[side] = append(results[side], r)
			fmt.Fprintf(os.Stderr, "rep %d/%d %s: %.0f events/s\n", rep+1, *reps, side, r.E2EEPS)
		}
	}
	fmt.Printf("\n%s, userevents %s, franz-go v1.18 (pure Go), %d events x %d reps, medians, broker %s, %d cores\n",
		runtime.Version(), userevents.Version(), *events, *reps, bootstrap, runtime.NumCPU())
	fmt.Printf("%-20s %12s %12s %10s %12s\n", "side", "call ev/s", "e2e ev/s", "CPU us/ev", "ue/side e2e")
	ue := median(results["userevents"], func(r bench.Result) float64 { return r.E2EEPS })
	for _, side := range sides {
		rs := results[side]
		e2e := median(rs, func(r bench.Result) float64 { return r.E2EEPS })
		fmt.Printf("%-20s %12.0f %12.0f %10.2f %12.2f\n", side,
			median(rs, func(r bench.Result) float64 { return r.CallEPS }), e2e,
			median(rs, func(r bench.Result) float64 { return r.CPUMicros }), ue/e2e)
	}
	fr := results["franz-go raw"]
	fmt.Printf("RATIO go userevents/franz-go_raw e2e %.2f call %.2f\n",
		ue/median(fr, func(r bench.Result) float64 { return r.E2EEPS }),
		median(results["userevents"], func(r bench.Result) float64 { return r.CallEPS })/
			median(fr, func(r bench.Result) float64 { return r.CallEPS }))
}
