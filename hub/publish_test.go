package hub

import (
	"context"
	"log/slog"
	"testing"
	"time"

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

// TestCallContext: every call gets at least busTimeout and at most twice
// that; one context serves the calls until less is left, the one it
// replaces is released, and the parent's end ends it.
func TestCallContext(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	var cc callContext
	t0 := time.Now()
	first := cc.get(parent, t0)
	steps := []struct {
		after time.Duration
		same  bool // the context of the call before serves this one
	}{
		{0, true},
		{busTimeout / 2, true},
		{busTimeout, true},
		{busTimeout + time.Millisecond, false},
		{busTimeout + 2*time.Millisecond, true},
	}
	prev := first
	for i, s := range steps {
		now := t0.Add(s.after)
		ctx := cc.get(parent, now)
		if (ctx == prev) != s.same {
			t.Fatalf("step %d (+%s): same context %v, want %v", i, s.after, ctx == prev, s.same)
		}
		dl, ok := ctx.Deadline()
		if !ok || dl.Sub(now) < busTimeout || dl.Sub(now) > 2*busTimeout {
			t.Fatalf("step %d (+%s): deadline %s after the call, want between %s and %s", i, s.after, dl.Sub(now), busTimeout, 2*busTimeout)
		}
		if !s.same && prev.Err() == nil {
			t.Fatalf("step %d: the context replaced was not released", i)
		}
		prev = ctx
	}
	cancelParent()
	if prev.Err() == nil {
		t.Fatal("the parent's end did not end the call context")
	}
	cc.release()
	if cc.ctx != nil {
		t.Fatal("release kept the context")
	}
}
