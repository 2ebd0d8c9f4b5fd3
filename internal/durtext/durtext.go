// Package durtext writes durations as people write them.
package durtext

import (
	"strings"
	"time"
)

// Short writes d as a person would set it: 5m and 8760h rather than Go's
// 5m0s and 8760h0m0s.
func Short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
