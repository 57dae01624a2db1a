//go:build !userevents_system

package whsink

// Default: libwhsink built in this repository (`make libs`), with an rpath to build/, as the
// userevents package does; -tags userevents_system links the installed one instead.

// #cgo CFLAGS: -I${SRCDIR}/../../../libwhsink/include
// #cgo LDFLAGS: -L${SRCDIR}/../../../build -lwhsink -Wl,-rpath,${SRCDIR}/../../../build
import "C"
