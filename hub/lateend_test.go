package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// gatedInterrupts is a memStore each of whose InterruptMessage calls
// waits for the test's reply on calls: an error fails the call, nil lets
// it through. It records how many calls were in flight at once.
type gatedInterrupts struct {
	*memStore
	calls chan chan error

	gate        sync.Mutex
	inFlight    int
	maxInFlight int
}

func (s *gatedInterrupts) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	s.gate.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.gate.Unlock()
	defer func() {
		s.gate.Lock()
		s.inFlight--
		s.gate.Unlock()
	}()
	reply := make(chan error)
	select {
	case s.calls <- reply:
	case <-ctx.Done():
		return persistence.Message{}, ctx.Err()
	}
	select {
	case err := <-reply:
		if err != nil {
			return persistence.Message{}, err
		}
	case <-ctx.Done():
		return persistence.Message{}, ctx.Err()
	}
	return s.memStore.InterruptMessage(ctx, ownerID, id, reason, at)
}

// answer waits for the next InterruptMessage call and replies err.
func (s *gatedInterrupts) answer(t *testing.T, err error) {
	t.Helper()
	select {
	case reply := <-s.calls:
		reply <- err
	case <-time.After(waitTimeout):
		t.Fatalf("no InterruptMessage call in %s", waitTimeout)
	}
}

func newGatedHub(t *testing.T, m Metrics) (*Hub, *gatedInterrupts) {
	t.Helper()
	st := &gatedInterrupts{memStore: newMemStore(), calls: make(chan chan error)}
	h := New(Options{Store: st, Writer: &memWriter{store: st.memStore}, Model: &fakeModel{script: say("x")}, Metrics: m})
	runHub(t, h, nil)
	return h, st
}

// pausedSweep makes h's sweep of late ends ask the test for each wait
// after a failed call (lateEnds.after): it gets them from the channel
// returned, and fires each.
func pausedSweep(h *Hub) <-chan pause {
	asked := make(chan pause, 16)
	h.late.after = func(d time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		asked <- pause{d: d, fire: c}
		return c
	}
	return asked
}

// pause is one wait of the sweep: d long, ended by a send on fire.
type pause struct {
	d    time.Duration
	fire chan<- time.Time
}

// TestLateEndsOneCallAtATime: the answers whose dropped end waits to be
// marked interrupted (many, after the writer's queue overflowed in a
// database outage) are marked one store call at a time, the next after a
// failure only after a wait (lateRetryBase, doubling with each failure in
// a row), and a failing call is no cluster bus call: a single instance
// with a locked database counted each in chatd_bus_call_failures_total
// and logged "cluster bus call failed". Before, each answer had a
// goroutine retrying on its own, every 2 s at most: hundreds of calls at
// once against a recovering database.
func TestLateEndsOneCallAtATime(t *testing.T) {
	t.Parallel()
	metrics := newBusMetricsRecorder()
	h, st := newGatedHub(t, metrics)
	pauses := pausedSweep(h)
	const answers, failures = 8, 3
	drop := fmt.Errorf("batch: message: update rejected 5 times: %w", persistence.ErrDropped)
	for i := range answers {
		h.FinalDropped(fmt.Sprint("m", i), "u", drop) // ended nowhere here: each is marked in the background
	}
	for i := range failures {
		st.answer(t, errors.New("database is locked"))
		var p pause
		select {
		case p = <-pauses:
		case <-time.After(waitTimeout):
			t.Fatalf("no wait after failure %d in %s", i+1, waitTimeout)
		}
		if want := lateRetryBase << i; p.d != want {
			t.Errorf("wait after failure %d: %s, want %s", i+1, p.d, want)
		}
		select {
		case <-st.calls:
			t.Fatalf("a call during the wait after failure %d", i+1)
		default:
		}
		p.fire <- time.Now()
	}
	for range answers {
		st.answer(t, nil) // the message is not in the store: marking it is done
	}
	if n := len(pauses); n != 0 {
		t.Errorf("%d waits after calls that did not fail", n)
	}
	st.gate.Lock()
	most := st.maxInFlight
	st.gate.Unlock()
	if most != 1 {
		t.Errorf("%d InterruptMessage calls in flight at once, want 1", most)
	}
	if c := metrics.counts(); len(c.failed) != 0 {
		t.Errorf("bus call failures counted for store calls: %v", c.failed)
	}
}

// TestLateEndsBounded: at most lateEnds.max answers wait to be marked
// interrupted; one past that is refused (logged: it stays streaming until
// the next start), and taken again once the waiting ones are done.
// watchLateIdle has h's sweep of late ends signal on the channel it
// returns whenever it goes idle (one signal kept while unread).
func watchLateIdle(h *Hub) <-chan struct{} {
	idle := make(chan struct{}, 1)
	h.late.mu.Lock()
	h.late.idle = func() {
		select {
		case idle <- struct{}{}:
		default:
		}
	}
	h.late.mu.Unlock()
	return idle
}

func TestLateEndsBounded(t *testing.T) {
	t.Parallel()
	h, st := newGatedHub(t, nil)
	idle := watchLateIdle(h)
	h.late.mu.Lock()
	h.late.max = 2
	h.late.mu.Unlock()
	if !h.endLater("u", "a") || !h.endLater("u", "b") {
		t.Fatal("endLater refused an answer below the bound")
	}
	if !h.endLater("u", "a") {
		t.Fatal("endLater refused an answer waiting already")
	}
	if h.endLater("u", "c") {
		t.Fatal("endLater took an answer past the bound")
	}
	st.answer(t, nil)
	st.answer(t, nil)
	select {
	case <-idle: // both marked: none waits
	case <-time.After(waitTimeout):
		t.Fatalf("%d answers still wait after %s", h.late.len(), waitTimeout)
	}
	if !h.endLater("u", "c") {
		t.Fatal("endLater refused an answer once the others were done")
	}
	st.answer(t, nil)
}
