//go:build userevents_system

package enrich

// -tags userevents_system: the installed library (`make install`), found by pkg-config.

// #cgo pkg-config: libenrich
import "C"
