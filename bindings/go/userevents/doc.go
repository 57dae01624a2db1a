// Package userevents is the Go binding of libuserevents, the userevents client SDK: track
// user events into Apache Kafka without losing one. It is a thin cgo layer over the public C
// API (userevents.h): validation, encoding, queueing, spooling and sending are the C
// library's.
//
//	ue, err := userevents.NewClient(map[string]string{
//		"kafka.bootstrap.servers": "127.0.0.1:9092",
//	}, userevents.WithDeliveries(1024))
//	if err != nil { ... }
//	defer ue.Close()
//	id, err := ue.Track(userevents.Event{Type: "purchase", UserID: "user-42",
//		Properties: map[string]any{"sku": "A-113", "amount": 19.9}})
//
// Threads: a Client is safe for concurrent use. Delivery reports come on a buffered
// channel fed from the library's background thread without ever blocking it (full: dropped
// and counted). Log lines go to log/slog.
//
// Errors are *Error values carrying the C error code; test them with
// errors.Is(err, userevents.ErrQueueFull).
//
// Linking: by default the library built in this repository (`make libs`); with
// -tags userevents_system the installed one, via pkg-config.
package userevents
