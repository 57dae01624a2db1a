//go:build userevents_system

package userevents

// -tags userevents_system: the installed library (`make install`), found by pkg-config.
// Set PKG_CONFIG_PATH when it is not under a standard prefix.

// #cgo pkg-config: libuserevents
import "C"
