package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
)

// endRaceBus is a MemBus whose next Acquire, once armed, takes the lock
// but reports the bus unavailable (a reply lost after the bus applied it,
// as lostReplyBus), whose first FrameAborted publish for that lock waits
// at a gate, and which counts the publishes of that answer running at
// once.
type endRaceBus struct {
	*MemBus
	armed   atomic.Bool
	waiting chan struct{} // closed when the first aborted publish waits at the gate
	found   chan struct{} // closed when an Acquire finds the lost lock held
	gate    chan struct{} // closed by the test
	onward  chan struct{} // when not nil, the Acquire that found the lost lock returns once it is closed

	mu      sync.Mutex
	lost    AnswerRef // the lock whose reply was lost
	gated   bool      // an aborted publish came to the gate
	running int       // publishes of lost's answer under way
	overlap bool      // two ran at once
	noticed bool      // found was closed
}

func newEndRaceBus(m *MemBus) *endRaceBus {
	return &endRaceBus{MemBus: m, waiting: make(chan struct{}), found: make(chan struct{}), gate: make(chan struct{})}
}

func (b *endRaceBus) Acquire(ctx context.Context, a AnswerRef) (AnswerRef, error) {
	holder, err := b.MemBus.Acquire(ctx, a)
	b.mu.Lock()
	if err == nil && b.armed.CompareAndSwap(true, false) {
		b.lost = a
		b.mu.Unlock()
		return AnswerRef{}, fmt.Errorf("acquire: %w: the reply was lost", ErrBusUnavailable)
	}
	first := errors.Is(err, ErrLockHeld) && holder == b.lost && !b.noticed
	if first {
		b.noticed = true
		close(b.found)
	}
	b.mu.Unlock()
	if first && b.onward != nil {
		<-b.onward
	}
	return holder, err
}

func (b *endRaceBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	b.mu.Lock()
	mine := a == b.lost
	if mine {
		b.running++
		b.overlap = b.overlap || b.running > 1
	}
	wait := mine && f.Type == FrameAborted && !b.gated
	if wait {
		b.gated = true
		close(b.waiting)
	}
	b.mu.Unlock()
	if wait {
		<-b.gate
	}
	err := b.MemBus.Publish(ctx, a, f)
	if mine {
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
	}
	return err
}

// TestClusterLostLockEndedOnce: a send whose lock the bus took but
// reported failed leaves it to be given up in the background (abortLock);
// the next send into the conversation finds that stale lock first and
// gives it up at once (dropLock). The two take turns: the lock's end
// (FrameAborted) is published once, never from two goroutines at once,
// and the next send runs its answer. Both published it, the second while
// the first was still under way: against Bus.Publish's one goroutine per
// answer (natsbus keeps the frame in flight unguarded for it). And when
// the background goroutine has ended it and returned before the next send
// (which read the lock's holder before) comes to dropLock, that send
// publishes nothing either: the end stays on record (endKept); before, it
// was forgotten as the goroutine returned, and published a second time.
func TestClusterLostLockEndedOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		afterward bool // the next send comes to dropLock once the background end has returned
	}{
		{name: "at once"},
		{name: "background end returned first", afterward: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lostLockEndedOnce(t, tc.afterward)
		})
	}
}

// lostLockEndedOnce is TestClusterLostLockEndedOnce's case.
func lostLockEndedOnce(t *testing.T, afterward bool) {
	tc := newTestCluster(t)
	var bus *endRaceBus
	a := tc.startWith(t, "A", func(m *MemBus) Bus {
		bus = newEndRaceBus(m)
		if afterward {
			bus.onward = make(chan struct{})
		}
		return bus
	}, nil)
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	bus.armed.Store(true)
	if _, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "lost"}); errCode(err) != protocol.CodeUnavailable {
		t.Fatalf("the send whose lock reply was lost: %v, want unavailable", err)
	}
	<-bus.waiting // the background end of the lost lock is being published
	type sent struct {
		res Result
		err error
	}
	next := make(chan sent, 1)
	go func() {
		res, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "again"})
		next <- sent{res, err}
	}()
	<-bus.found // the next send found the stale lock
	close(bus.gate)
	if afterward {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := a.waitPublished(ctx); err != nil { // the background end returned
			t.Fatalf("the background end of the lost lock: %v", err)
		}
		close(bus.onward)
	}
	r := <-next
	if r.err != nil {
		t.Fatalf("the next send: %v", r.err)
	}
	run := a.model.next(t)
	run.say(t, "ok")
	close(run.tokens)
	if st := onA.waitDone(t, r.res.MessageID); st != "complete" {
		t.Fatalf("done %q", st)
	}
	tc.waitUnlocked(t, conv.ID)
	bus.mu.Lock()
	lost, overlap := bus.lost, bus.overlap
	bus.mu.Unlock()
	if n := countType(streamFrames(tc.mem, lost.MessageID), "", FrameAborted); n != 1 || overlap {
		t.Fatalf("the lost lock's end was published %d times (at once: %v), want once", n, overlap)
	}
}
