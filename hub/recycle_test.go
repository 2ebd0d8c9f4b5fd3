package hub

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// deltaTab is a subscriber that records, for each delta it is handed, the
// frame and its bytes as they read when it wrote them: at once, or, while
// hold is set, only when releaseHeld writes the frames it kept (a
// WebSocket whose writer lags). releases makes it a FrameReleaser, which
// releases each frame once written.
type deltaTab struct {
	nopSub
	releases bool
	hold     bool
	held     []*protocol.Frame
	frames   []*protocol.Frame
	written  [][]byte
}

func (t *deltaTab) Deliver(f *protocol.Frame) {
	if t.hold {
		t.held = append(t.held, f)
		return
	}
	t.write(f)
}

func (t *deltaTab) write(f *protocol.Frame) {
	t.frames = append(t.frames, f)
	t.written = append(t.written, bytes.Clone(f.Data))
	if t.releases {
		f.Release()
	}
}

// releaseHeld writes the frames kept while hold was set, and stops holding.
func (t *deltaTab) releaseHeld() {
	for _, f := range t.held {
		t.write(f)
	}
	t.held, t.hold = nil, false
}

// releasingTab is a deltaTab that says it releases the frames it is handed.
type releasingTab struct{ deltaTab }

func (*releasingTab) ReleasesFrames() {}

func newReleasingTab() *releasingTab { return &releasingTab{deltaTab{releases: true}} }

// distinct counts the different frames in fs.
func distinct(fs []*protocol.Frame) int {
	seen := map[*protocol.Frame]bool{}
	for _, f := range fs {
		seen[f] = true
	}
	return len(seen)
}

// TestRecycledDeltasNotOverwritten streams an answer of a delta per token
// to two tabs that release the frames they write: the hub builds the next
// delta in the frame both released, and never in one a deltaTab still holds
// (its writer lagging for a third of the answer): both tabs write the same
// delta sequence, byte for byte, the one an answer with tabs that release
// nothing gets, and while neither holds a frame the answer reuses one.
func TestRecycledDeltasNotOverwritten(t *testing.T) {
	t.Parallel()
	const tokens = 60
	stream := func(tabs ...Subscriber) {
		h := New(Options{Writer: nopWriter{}, CoalesceInterval: time.Microsecond})
		c := &conv{id: "conv"}
		for _, s := range tabs {
			c.subs.add(s)
		}
		g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m", ConversationID: "conv"}}
		c.gen = g
		now := time.Now()
		lag := tabs[len(tabs)-1].(*releasingTab)
		for i := range tokens {
			switch i {
			case tokens / 3:
				lag.hold = true
			case 2 * tokens / 3:
				lag.releaseHeld()
			}
			now = now.Add(time.Millisecond)
			g.onDeltaAt(fmt.Sprintf("token %d, ", i), now)
		}
	}
	a, b := newReleasingTab(), newReleasingTab()
	stream(a, b)
	plain := newReleasingTab()
	stream(&deltaTab{}, plain) // a deltaTab that releases nothing: no frame is reused

	if len(plain.written) != tokens {
		t.Fatalf("%d deltas, want one per token (%d)", len(plain.written), tokens)
	}
	for name, got := range map[string]*releasingTab{"first tab": a, "second tab": b} {
		if len(got.written) != tokens {
			t.Fatalf("%s wrote %d deltas, want %d", name, len(got.written), tokens)
		}
		for i := range got.written {
			if !bytes.Equal(got.written[i], plain.written[i]) {
				t.Fatalf("%s's delta %d is %s, want %s", name, i, got.written[i], plain.written[i])
			}
		}
	}
	if n := distinct(plain.frames); n != tokens {
		t.Errorf("with a deltaTab that releases nothing %d frames for %d deltas, want a new one each", n, tokens)
	}
	// The first third: one frame, built again each time. The second: a
	// new frame per delta (the lagging deltaTab holds each). The last: the
	// frame released last, then one more at most.
	if n, most := distinct(a.frames), 1+tokens/3+2; n > most {
		t.Errorf("%d frames for %d deltas, want at most %d (frames both tabs released built again)", n, tokens, most)
	}
}

// TestRecycledDeltasNotWithBus: an answer whose frames the bus's outbox
// keeps (another instance follows it) gets a new frame per delta, even
// with every deltaTab releasing its frames: the publisher still reads them.
func TestRecycledDeltasNotWithBus(t *testing.T) {
	t.Parallel()
	h := New(Options{Writer: nopWriter{}, CoalesceInterval: time.Microsecond})
	c := &conv{id: "conv"}
	c.subs.add(newReleasingTab())
	c.out = &outbox{wake: make(chan struct{}, 1)}
	g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m", ConversationID: "conv"}}
	c.gen = g
	now := time.Now()
	var want [][]byte
	for i := range 10 {
		now = now.Add(time.Millisecond)
		g.onDeltaAt(fmt.Sprintf("token %d, ", i), now)
		want = append(want, bytes.Clone(c.out.frames[len(c.out.frames)-1].Data))
	}
	if n := distinct(c.out.frames); n != len(c.out.frames) {
		t.Fatalf("%d frames for the outbox's %d deltas, want a new one each", n, len(c.out.frames))
	}
	for i, f := range c.out.frames {
		if !bytes.Equal(f.Data, want[i]) {
			t.Fatalf("the outbox's delta %d now reads %s, was %s", i, f.Data, want[i])
		}
	}
}
