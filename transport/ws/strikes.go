package ws

import "time"

// strikes counts events in a sliding window and reports when a limit is hit.
type strikes struct {
	limit  int
	window time.Duration
	times  []time.Time
}

func newStrikes(limit int, window time.Duration) *strikes {
	return &strikes{limit: limit, window: window}
}

// hit records one event and reports whether the window now holds more than limit.
func (s *strikes) hit(now time.Time) bool {
	keep := s.times[:0]
	for _, t := range s.times {
		if now.Sub(t) < s.window {
			keep = append(keep, t)
		}
	}
	s.times = append(keep, now)
	return len(s.times) > s.limit
}
