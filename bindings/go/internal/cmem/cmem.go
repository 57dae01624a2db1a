// Package cmem reports the C heap in use (glibc mallinfo2: every arena, plus mmapped
// chunks), for the leak tests: unlike RSS it does not move with malloc's arena caching.
package cmem

// #include <malloc.h>
import "C"

// InUse returns the bytes malloc has handed out and not had back, or -1 where unknown.
func InUse() int64 {
	mi := C.mallinfo2()
	return int64(mi.uordblks) + int64(mi.hblkhd)
}
