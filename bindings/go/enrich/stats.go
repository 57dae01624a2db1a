package enrich

// #include <enrich.h>
import "C"

import "fmt"

// Stat returns one counter by its name in enr_stat_name(): "consumed", "enriched", "dropped",
// "dead_letters", "txn_commits", ... Any goroutine.
func (p *Processor) Stat(name string) (int64, error) {
	for i := C.enr_stat_t(0); i < C.ENR_STAT__CNT; i++ {
		if C.GoString(C.enr_stat_name(i)) != name {
			continue
		}
		if p == nil {
			return 0, ErrClosed
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		if p.p == nil {
			return 0, ErrClosed
		}
		return int64(C.enr_stat(p.p, i)), nil
	}
	return 0, &Error{Code: ErrInvalidArg, Name: ErrInvalidArg.String(),
		Message: fmt.Sprintf("no statistic %q", name)}
}

// Stats returns every counter by name; nil after Close. Any goroutine.
func (p *Processor) Stats() map[string]int64 {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.p == nil {
		return nil
	}
	out := make(map[string]int64, C.ENR_STAT__CNT)
	for i := C.enr_stat_t(0); i < C.ENR_STAT__CNT; i++ {
		out[C.GoString(C.enr_stat_name(i))] = int64(C.enr_stat(p.p, i))
	}
	return out
}
