//go:build userevents_system

package whsink

// -tags userevents_system: the installed library (`make install`), found by pkg-config.

// #cgo pkg-config: libwhsink
import "C"
