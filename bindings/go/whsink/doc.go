// Package whsink is the Go binding of libwhsink: it loads the enriched event topic (values
// userevents.EnrichedEvent) into a warehouse (SQLite, PostgreSQL, ClickHouse or files), each
// event exactly once, by committing rows and Kafka offsets in one warehouse transaction. All
// of that is the C library's (whsink.h); this package is a thin cgo layer.
//
//	s, err := whsink.NewSink(map[string]string{
//		"kafka.bootstrap.servers": "127.0.0.1:9092",
//		"warehouse.url":           "sqlite:/var/lib/shop/events.db",
//	}, whsink.WithCommitCallback(func(c whsink.Commit) { loaded.Add(c.Rows) }))
//	if err != nil { ... }
//	go func() { <-ctx.Done(); s.Stop() }()
//	err = s.Run()             // until Stop, Close or a fatal error
//	s.Close(10 * time.Second) // flush, commit, leave the group
//
// Threads: one goroutine drives (Poll, Run, Flush, Close) and runs the callbacks, from inside
// those calls; Stop, Stat, Stats and KafkaStats are safe from any goroutine.
//
// Errors are *Error values carrying the C code; test them with errors.Is(err,
// whsink.ErrTimedOut). Calls on a closed sink return ErrClosed.
//
// Linking: by default the library built in this repository (`make libs`); with
// -tags userevents_system the installed one, via pkg-config.
package whsink
