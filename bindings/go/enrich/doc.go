// Package enrich is the Go binding of libenrich's processor: it consumes the raw event
// topics that libuserevents writes, runs the configured stages (dedup, clock, useragent,
// geoip, profile, session, window, anomaly) and produces the enriched, aggregates, alerts and
// dead-letter topics, committing outputs, stage state and input offsets in one Kafka
// transaction. All of that is the C library's (enrich.h); this package is a thin cgo layer.
//
//	p, err := enrich.NewProcessor(map[string]string{
//		"kafka.bootstrap.servers": "127.0.0.1:9092",
//		"input.topics":            "^events\\..*",
//		"stages":                  "dedup,clock,useragent,session",
//	})
//	if err != nil { ... }
//	go func() { <-ctx.Done(); p.Stop() }()
//	err = p.Run()            // until Stop, Close or a fatal error (ErrFenced, ErrKafka)
//	p.Close(10 * time.Second) // commit what is done, leave the group
//
// Threads: one goroutine drives (Poll or Run); Stop, Stat, Stats and KafkaStats are safe from
// any goroutine; Close stops the driver and waits for it.
//
// Errors are *Error values carrying the C code; test them with errors.Is(err,
// enrich.ErrFenced). Calls on a closed processor return ErrClosed.
//
// Linking: by default the library built in this repository (`make libs`); with
// -tags userevents_system the installed one, via pkg-config.
package enrich
