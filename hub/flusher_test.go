package hub

import (
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// recorder is a Subscriber that keeps the frames it is handed.
type recorder struct {
	mu     sync.Mutex
	frames []*protocol.Frame
}

func (r *recorder) UserID() string                   { return "u" }
func (r *recorder) ConnectionID() string             { return "c" }
func (r *recorder) Close(protocol.CloseCode, string) {}
func (r *recorder) Deliver(f *protocol.Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}
func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.frames) }

// queuedGen is a generation with unsent text, followed by its own recorder.
func queuedGen(h *Hub, id string) (*generation, *recorder) {
	rec := &recorder{}
	c := &conv{id: "conv-" + id, subs: followersOf(rec)}
	g := &generation{hub: h, conv: c, msg: persistence.Message{ID: id, ConversationID: c.id}, text: []byte("token ")}
	c.gen = g
	return g, rec
}

// queue puts g in the wheel as onDelta does, due at due.
func queue(f *flusher, g *generation, due, now time.Time) {
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	f.add(g, due, now)
}

// TestFlusherSendsEachAnswerWhenDue: every answer's text goes out at the
// tick of the bucket its due time falls in (at most one bucket early, never
// late), not all at one global tick.
func TestFlusherSendsEachAnswerWhenDue(t *testing.T) {
	t.Parallel()
	h, f, at := wheelAt(Options{CoalesceInterval: 40 * time.Millisecond}) // buckets of 5ms

	g1, r1 := queuedGen(h, "a")
	g2, r2 := queuedGen(h, "b")
	g3, r3 := queuedGen(h, "c")
	queue(f, g1, at(5), at(0))
	queue(f, g2, at(17), at(1))
	queue(f, g3, at(38), at(2))
	select {
	case <-f.wake:
	default:
		t.Fatal("the first queued answer did not wake the Run loop")
	}
	steps := []struct {
		ms   float64
		sent [3]int
		more bool
	}{
		{4.9, [3]int{0, 0, 0}, true},
		{5, [3]int{1, 0, 0}, true},
		{14.9, [3]int{1, 0, 0}, true},
		{15, [3]int{1, 1, 0}, true}, // due at 17: its bucket began at 15
		{34, [3]int{1, 1, 0}, true},
		{35, [3]int{1, 1, 1}, false},
	}
	for _, s := range steps {
		more := f.tick(at(s.ms))
		if got := [3]int{r1.count(), r2.count(), r3.count()}; got != s.sent || more != s.more {
			t.Fatalf("at %.1fms: sent %v (more %v), want %v (more %v)", s.ms, got, more, s.sent, s.more)
		}
	}
}

// TestFlusherStaleEntry: an answer sent early (by its next token, or its
// end) and queued again goes out once, at its new due time.
func TestFlusherStaleEntry(t *testing.T) {
	t.Parallel()
	h, f, ms := wheelAt(Options{CoalesceInterval: 40 * time.Millisecond})

	g, rec := queuedGen(h, "a")
	queue(f, g, ms(10), ms(0))
	g.conv.mu.Lock()
	g.flushLocked(ms(3)) // sent early
	g.text = append(g.text, "more "...)
	g.conv.mu.Unlock()
	queue(f, g, ms(33), ms(4))
	if f.tick(ms(12)); rec.count() != 1 {
		t.Fatalf("the stale entry sent the text again early: %d frames", rec.count())
	}
	if more := f.tick(ms(30)); rec.count() != 2 || more {
		t.Fatalf("at its due bucket: %d frames (want 2), more %v", rec.count(), more)
	}
	if f.tick(ms(80)); rec.count() != 2 {
		t.Fatalf("sent twice: %d frames", rec.count())
	}
}

// TestFlusherLateTicks: when ticks run late, queued text stays in the ring
// and everything due is sent by the next tick.
func TestFlusherLateTicks(t *testing.T) {
	t.Parallel()
	h, f, at := wheelAt(Options{CoalesceInterval: 40 * time.Millisecond})
	t0 := at(0)
	var recs []*recorder
	for i := range 30 {
		g, rec := queuedGen(h, string(rune('a'+i)))
		now := t0.Add(time.Duration(i) * 7 * time.Millisecond) // no tick for 200ms
		queue(f, g, now.Add(39*time.Millisecond), now)
		recs = append(recs, rec)
	}
	if more := f.tick(t0.Add(time.Second)); more {
		t.Fatal("text still queued after a tick past every due time")
	}
	for i, r := range recs {
		if r.count() != 1 {
			t.Fatalf("answer %d: %d frames, want 1", i, r.count())
		}
	}
}

// TestFlusherWidenedWindow: text due up to CoalesceMaxInterval after now
// (coalescing widened by many streams) waits for its own bucket, not for
// the end of a ring sized for CoalesceInterval.
func TestFlusherWidenedWindow(t *testing.T) {
	t.Parallel()
	h, f, ms := wheelAt(Options{CoalesceInterval: 40 * time.Millisecond, CoalesceMaxInterval: 120 * time.Millisecond})

	g, rec := queuedGen(h, "a")
	queue(f, g, ms(115), ms(0))
	if f.tick(ms(60)); rec.count() != 0 {
		t.Fatal("text due at 115ms went out at 60ms")
	}
	if more := f.tick(ms(115)); rec.count() != 1 || more {
		t.Fatalf("at its bucket (115ms): %d frames (want 1), more %v", rec.count(), more)
	}
}

// TestFlusherPassesOverStaleEntries: an answer sent before its bucket came
// (by its next token or a drain) leaves a stale entry in the wheel, which
// the tick passes over without taking the conversation's lock (the
// answer's goroutine holds it at every token); an answer queued again
// after that is sent at its new bucket, once.
func TestFlusherPassesOverStaleEntries(t *testing.T) {
	t.Parallel()
	h, f, at := wheelAt(Options{CoalesceInterval: 40 * time.Millisecond}) // buckets of 5ms

	g, rec := queuedGen(h, "a")
	queue(f, g, at(10), at(0))
	g.conv.mu.Lock()
	g.flushLocked(at(3)) // sent early: the entry at 10 is stale
	g.conv.mu.Unlock()
	if rec.count() != 1 {
		t.Fatalf("%d frames after the early send, want 1", rec.count())
	}

	// The tick must not wait for the lock the answer holds.
	g.conv.mu.Lock()
	ticked := make(chan bool)
	go func() { ticked <- f.tick(at(12)) }()
	select {
	case more := <-ticked:
		g.conv.mu.Unlock()
		if more {
			t.Fatal("the wheel still reports waiting text after its only entry was passed over")
		}
	case <-time.After(5 * time.Second):
		g.conv.mu.Unlock()
		<-ticked
		t.Fatal("the tick took the conversation's lock for a stale entry")
	}

	// Queued again, with text: sent at its new bucket, not before.
	g.conv.mu.Lock()
	g.text = append(g.text, "more "...)
	g.conv.mu.Unlock()
	queue(f, g, at(30), at(20))
	f.tick(at(29.9))
	if rec.count() != 1 {
		t.Fatalf("%d frames before the new bucket, want 1", rec.count())
	}
	f.tick(at(30))
	if rec.count() != 2 {
		t.Fatalf("%d frames at the new bucket, want 2", rec.count())
	}
}

// wheelAt is a hub made with o whose flusher's wheel starts now, and at,
// which gives the time ms milliseconds after that start.
func wheelAt(o Options) (*Hub, *flusher, func(ms float64) time.Time) {
	h := New(o)
	f := h.flush
	t0 := time.Now()
	f.base, f.next = t0, 0
	return h, f, func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
}
