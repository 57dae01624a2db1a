//go:build !userevents_system

package userevents

// Default: the C library built in this repository (`make libs` at the repository root), found
// relative to this file and linked as a shared library with an rpath, so `go test` and
// `go build` work from a checkout with no install step. The binary then needs that build
// directory at run time; to ship binaries, `make install` the library and build with
// -tags userevents_system.

// #cgo CFLAGS: -I${SRCDIR}/../../../libuserevents/include
// #cgo LDFLAGS: -L${SRCDIR}/../../../build -luserevents -Wl,-rpath,${SRCDIR}/../../../build
import "C"
