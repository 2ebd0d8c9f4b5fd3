package hub

import "time"

// Metrics receives what the hub counts; transport/metrics exports it to
// Prometheus.
type Metrics interface {
	// GenerationStarted counts an answer that began.
	GenerationStarted(model string)
	// GenerationFinished records how an answer ended: its status, as its
	// done reported it; upstreamKind, the kind of the model provider's
	// failure that ended it (an llm.ErrorKind), or "" when the provider
	// did not fail it (it completed, was stopped, reached the server's
	// own duration limit, or failed unexpectedly), whatever the status
	// (an answer whose final write failed reports error, unavailable); the
	// time to its first token (0 when none came), its number of deltas
	// from upstream and the time from its first to its last delta.
	GenerationFinished(model, status, upstreamKind string, ttft time.Duration, tokens int, streaming time.Duration)
	// DeltaSent counts one delta frame handed to n subscribers.
	DeltaSent(n int)
}

// BusMetrics is what a Metrics may also implement to count the hub's
// work with the other instances of a cluster. A hub with one instance
// calls only AnswerSwept: its sweep of answers left streaming runs there
// too (sweep.go).
type BusMetrics interface {
	// BusCallFailed counts one failed bus call, which is retried, by what
	// it was for (a fixed description, such as "publish answer frame").
	BusCallFailed(call string)
	// AnswerTakenOver counts an answer of an instance whose lease expired
	// that this instance ended (stored as interrupted, its done published).
	AnswerTakenOver()
	// AnswerSwept counts an answer left streaming with nothing to end it
	// (its end could not be stored, and its instance stopped or crashed)
	// that this instance's sweep stored as interrupted.
	AnswerSwept()
	// MirrorsChanged moves by delta the number of answers running on other
	// instances that this instance mirrors to its tabs.
	MirrorsChanged(delta int)
	// MirrorLost counts a mirrored answer whose stream this instance lost
	// (the bus failed): its tabs were told to reconnect.
	MirrorLost()
	// MirrorFromStore counts a hole in a mirrored answer (frames the bus
	// no longer held when the mirror came to read them) filled from the
	// store: the bus keeps less than the cluster's answers need.
	MirrorFromStore()
}

// busMetricsOf returns m's BusMetrics, or one that records nothing.
func busMetricsOf(m Metrics) BusMetrics {
	if bm, ok := m.(BusMetrics); ok {
		return bm
	}
	return nopMetrics{}
}

type nopMetrics struct{}

func (nopMetrics) GenerationStarted(string)                                                     {}
func (nopMetrics) GenerationFinished(string, string, string, time.Duration, int, time.Duration) {}
func (nopMetrics) DeltaSent(int)                                                                {}
func (nopMetrics) BusCallFailed(string)                                                         {}
func (nopMetrics) AnswerTakenOver()                                                             {}
func (nopMetrics) AnswerSwept()                                                                 {}
func (nopMetrics) MirrorsChanged(int)                                                           {}
func (nopMetrics) MirrorLost()                                                                  {}
func (nopMetrics) MirrorFromStore()                                                             {}
