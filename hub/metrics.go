package hub

import "time"

// Metrics receives what the hub counts; transport/metrics exports it to
// Prometheus.
type Metrics interface {
	// GenerationStarted counts an answer that began.
	GenerationStarted(model string)
	// GenerationFinished records how an answer ended: its status, the error
	// code (or ""), the time to its first token (0 when none came), its
	// number of deltas from upstream and the time from its first to its
	// last delta.
	GenerationFinished(model, status, errorCode string, ttft time.Duration, tokens int, streaming time.Duration)
	// DeltaSent counts one delta frame handed to n subscribers.
	DeltaSent(n int)
}

type nopMetrics struct{}

func (nopMetrics) GenerationStarted(string)                                                     {}
func (nopMetrics) GenerationFinished(string, string, string, time.Duration, int, time.Duration) {}
func (nopMetrics) DeltaSent(int)                                                                {}
