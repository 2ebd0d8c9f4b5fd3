package hub

import "chatd/hub/protocol"

// Subscriber is one client connection (a WebSocket, an SSE stream) as the
// hub sees it.
type Subscriber interface {
	// UserID is the authenticated owner of the connection.
	UserID() string
	// ConnectionID names the connection in logs.
	ConnectionID() string
	// Deliver queues f for the client. It must never block: a subscriber
	// that cannot keep up disconnects itself.
	Deliver(f *protocol.Frame)
	// Close ends the connection with code and reason (for example when the
	// user logs out).
	Close(code protocol.CloseCode, reason string)
}
