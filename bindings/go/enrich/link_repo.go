//go:build !userevents_system

package enrich

// Default: libenrich built in this repository (`make libs`), with an rpath to build/, as the
// userevents package does; -tags userevents_system links the installed one instead.

// #cgo CFLAGS: -I${SRCDIR}/../../../libenrich/include
// #cgo LDFLAGS: -L${SRCDIR}/../../../build -lenrich -Wl,-rpath,${SRCDIR}/../../../build
import "C"
