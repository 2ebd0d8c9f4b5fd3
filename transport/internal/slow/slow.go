// Package slow names why a live channel (a WebSocket or an SSE stream)
// was closed for a client too slow to take its frames, as the
// transports' metrics report it.
package slow

// Reasons of a slow client's disconnection.
const (
	// QueueFull: the frames waiting for the client passed their bound
	// (QueueSize or QueueBytes): closed with 4408.
	QueueFull = "queue_full"
	// WriteTimeout: one write to the client's socket outlived the
	// transport's WriteTimeout (10 s by default).
	WriteTimeout = "write_timeout"
)
