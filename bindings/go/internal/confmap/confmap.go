// Package confmap applies a Go configuration map through one of the C libraries'
// *_conf_set() calls: keys in sorted order (the same error for the same bad map, every time),
// NUL bytes refused before C sees them, the first refusal returned with the library's reason.
package confmap

import (
	"sort"
	"strings"
)

// Kind is why a key was refused.
type Kind int

const (
	NulByte Kind = iota // a NUL byte in the key or value: C strings cannot hold it
	Invalid             // the library knows the key but not the value
	Unknown             // the library does not know the key
)

// Refusal is the first key the library refused.
type Refusal struct {
	Key    string
	Kind   Kind
	Reason string
}

// Set calls the library's conf_set for one key: it returns the library's result (0 OK,
// -1 invalid value, -2 unknown key: every *_conf_res_t) and its reason.
type Set func(key, value string) (result int, reason string)

// Apply sets every key of config with set; nil, or the first refusal.
func Apply(config map[string]string, set Set) *Refusal {
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := config[k]
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			return &Refusal{k, NulByte, "NUL byte in key or value"}
		}
		switch rc, reason := set(k, v); rc {
		case 0:
		case -2:
			return &Refusal{k, Unknown, reason}
		default:
			return &Refusal{k, Invalid, reason}
		}
	}
	return nil
}
