package hub

import (
	"strings"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// countingSub is a Subscriber that only counts what it is handed.
type countingSub struct{ frames int }

func (s *countingSub) UserID() string                   { return "u1" }
func (s *countingSub) ConnectionID() string             { return "conn-1" }
func (s *countingSub) Deliver(*protocol.Frame)          { s.frames++ }
func (s *countingSub) Close(protocol.CloseCode, string) {}

// TestMirrorDeltaAllocations: a mirror applies a delta from the bus (its
// text appended to the answer's, the frame handed to the tabs) without
// allocating: the text is read in place from the frame's bytes, not
// copied into a string first.
func TestMirrorDeltaAllocations(t *testing.T) {
	h := &Hub{opts: Options{Metrics: nopMetrics{}}}
	c := &conv{id: "c1", owner: "u1"}
	sub := &countingSub{}
	c.subs.add(sub)
	m := &mirror{h: h, conv: c, ref: AnswerRef{ConversationID: "c1", MessageID: "m1"}, cancel: func() {},
		message: protocol.Message(persistence.Message{ID: "m1", ConversationID: "c1"})}
	c.remote = m
	m.text = make([]byte, 0, 1<<20) // no growth within the runs: only per-frame allocations count
	token := "some token text"
	frames := make([]*protocol.Frame, 0, 110)
	for i := range cap(frames) {
		frames = append(frames, protocol.Delta("c1", "m1", int64((i+1)*len(token)), token))
	}
	next := 0
	allocs := testing.AllocsPerRun(100, func() {
		m.onFrame(frames[next], false)
		next++
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per delta, want none", allocs)
	}
	if want := strings.Repeat(token, next); string(m.text) != want || sub.frames != next {
		t.Fatalf("mirror has %d bytes and delivered %d frames, want %d and %d", len(m.text), sub.frames, len(want), next)
	}
}
