package whsink

// #include <whsink.h>
import "C"

import (
	"fmt"
	"unsafe"
)

// Stat returns one statistic by its name in whs_stat_name(): "consumed", "rows_loaded",
// "batches", "dead_letters", "skipped", ... Any goroutine.
func (s *Sink) Stat(name string) (int64, error) {
	for i := C.whs_stat_t(0); i < C.WHS_STAT__CNT; i++ {
		if C.GoString(C.whs_stat_name(i)) != name {
			continue
		}
		if s == nil {
			return 0, errClosed
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.s == nil {
			return 0, errClosed
		}
		return int64(C.whs_stat(s.s, i)), nil
	}
	return 0, &Error{Code: ErrInvalidArg, Name: ErrInvalidArg.String(),
		Message: fmt.Sprintf("no statistic %q", name)}
}

// Stats returns every statistic by name; nil after Close. Any goroutine.
func (s *Sink) Stats() map[string]int64 {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return nil
	}
	out := make(map[string]int64, C.WHS_STAT__CNT)
	for i := C.whs_stat_t(0); i < C.WHS_STAT__CNT; i++ {
		out[C.GoString(C.whs_stat_name(i))] = int64(C.whs_stat(s.s, i))
	}
	return out
}

// KafkaStats returns the consumer's latest librdkafka statistics, a JSON object
// (whs_kafka_stats_json); nil before the first one, when they are off or after Close.
// Any goroutine.
func (s *Sink) KafkaStats() []byte {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return nil
	}
	buf := make([]byte, 64<<10)
	for {
		n := int(C.whs_kafka_stats_json(s.s, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
		if n == 0 {
			return nil
		}
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, n+4096) // it grew meanwhile: call again, as the header says
	}
}
