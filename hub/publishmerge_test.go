package hub

import (
	"fmt"
	"strings"
	"testing"

	"chatd/hub/protocol"
)

func TestMergeText(t *testing.T) {
	t.Parallel()
	const conv, a, b = "c1", "m1", "m2"
	d := func(msg string, seq, rseq int64, text string) *protocol.Frame {
		return protocol.DeltaAt(conv, msg, seq, rseq, text)
	}
	r := func(seq, rseq int64, text string) *protocol.Frame {
		return protocol.Reasoning(conv, a, seq, rseq, text)
	}
	long := strings.Repeat("x", busTextMax-1) + "é" + "yz" // the bound falls inside é
	half := strings.Repeat("h", busTextMax/2+1)
	thought := strings.Repeat("r", busTextMax+3)
	bad := &protocol.Frame{Type: protocol.TypeDelta, ConversationID: conv, MessageID: a, Seq: 9, Data: []byte("{")}
	msg := &protocol.Frame{Type: protocol.TypeMessage, ConversationID: conv, MessageID: a, Data: []byte(`{"type":"message"}`)}
	tests := []struct {
		name string
		in   []*protocol.Frame
		want []*protocol.Frame
	}{
		{"nothing", nil, nil},
		{"one delta", []*protocol.Frame{d(a, 2, 0, "he")}, []*protocol.Frame{d(a, 2, 0, "he")}},
		{"a run of deltas", []*protocol.Frame{d(a, 2, 0, "he"), d(a, 4, 0, "ll"), d(a, 8, 0, "o \"é")},
			[]*protocol.Frame{d(a, 8, 0, "hello \"é")}},
		{"reasoning then deltas", []*protocol.Frame{r(0, 3, "hmm"), r(0, 4, "."), d(a, 2, 4, "ok"), d(a, 3, 4, "!")},
			[]*protocol.Frame{r(0, 4, "hmm."), d(a, 3, 4, "ok!")}},
		{"kinds alternate", []*protocol.Frame{d(a, 1, 0, "a"), r(1, 1, "b"), d(a, 2, 1, "c")},
			[]*protocol.Frame{d(a, 1, 0, "a"), r(1, 1, "b"), d(a, 2, 1, "c")}},
		{"another answer ends the run", []*protocol.Frame{d(a, 1, 0, "a"), d(b, 1, 0, "b"), d(b, 2, 0, "c")},
			[]*protocol.Frame{d(a, 1, 0, "a"), d(b, 2, 0, "bc")}},
		{"a message frame ends the run", []*protocol.Frame{msg, d(a, 1, 0, "a"), d(a, 2, 0, "b"), msg},
			[]*protocol.Frame{msg, d(a, 2, 0, "ab"), msg}},
		{"an unreadable frame stays as it is", []*protocol.Frame{d(a, 1, 0, "a"), d(a, 2, 0, "b"), bad, d(a, 10, 0, "c"), d(a, 11, 0, "d")},
			[]*protocol.Frame{d(a, 2, 0, "ab"), bad, d(a, 11, 0, "cd")}},
		{"a long delta is split between characters", []*protocol.Frame{d(a, int64(7+len(long)), 0, long)},
			[]*protocol.Frame{d(a, int64(7+busTextMax-1), 0, long[:busTextMax-1]), d(a, int64(7+len(long)), 0, long[busTextMax-1:])}},
		{"a run is merged up to the bound", []*protocol.Frame{d(a, 1, 0, "a"), d(a, int64(1+len(half)), 0, half), d(a, int64(1+2*len(half)), 0, half)},
			[]*protocol.Frame{d(a, int64(1+len(half)), 0, "a"+half), d(a, int64(1+2*len(half)), 0, half)}},
		{"long reasoning is split", []*protocol.Frame{r(5, int64(len(thought)), thought)},
			[]*protocol.Frame{r(5, busTextMax, thought[:busTextMax]), r(5, int64(len(thought)), thought[busTextMax:])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, want := framesString(mergeText(tt.in)), framesString(tt.want); got != want {
				t.Fatalf("merged:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestMergeTextKeepsInput checks that merging never changes the frames it
// was given (they are shared with the local tabs).
func TestMergeTextKeepsInput(t *testing.T) {
	t.Parallel()
	in := []*protocol.Frame{protocol.DeltaAt("c", "m", 1, 0, "a"), protocol.DeltaAt("c", "m", 2, 0, "b")}
	before := framesString(in)
	_ = mergeText(in)
	if after := framesString(in); after != before {
		t.Fatalf("input changed:\n%s\nwas:\n%s", after, before)
	}
}

func framesString(fs []*protocol.Frame) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s %s seq=%d rseq=%d %s\n", f.Type, f.MessageID, f.Seq, f.RSeq, f.Data)
	}
	return b.String()
}
