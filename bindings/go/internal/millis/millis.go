// Package millis turns a time.Duration into the integer milliseconds the C APIs take.
package millis

import (
	"math"
	"time"
)

// From rounds d up to whole milliseconds (so 1ns still waits, never spins at 0), capped at
// MaxInt32; a negative d is -1, which the C APIs read as "no limit" or "the default".
func From(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int(min(int64(math.MaxInt32), int64((d+time.Millisecond-1)/time.Millisecond)))
}
