package hub

import (
	"log/slog"
	"testing"

	"chatd/hub/protocol"
)

// BenchmarkPublishFrame is what the hub adds to the bus's Publish for each
// frame of a local answer (publisher.send over the in-memory bus, whose
// Publish only appends the frame).
func BenchmarkPublishFrame(b *testing.B) {
	bus := NewMemCluster().Join("A")
	h := &Hub{log: slog.New(slog.DiscardHandler), cluster: newCluster(bus, nopMetrics{})}
	p := &publisher{h: h, o: &outbox{ref: AnswerRef{ConversationID: "c1", MessageID: "m1", UserID: "u1", Instance: "A"}}, started: true}
	f := protocol.Delta("c1", "m1", 5, "token")
	b.ReportAllocs()
	for b.Loop() {
		if !p.send(f) {
			b.Fatal("send stopped")
		}
	}
}
