package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// downStore is one instance's view of the shared store during an outage:
// while down is set, every message insert is applied and then reported
// failed (a reply lost), and InterruptMessage fails; it counts those calls
// and, when failed is set, tells each failure on it (without waiting).
type downStore struct {
	*gateStore
	down       atomic.Bool
	interrupts atomic.Int64
	failed     chan struct{}
}

func (s *downStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

func (s *downStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	if err := s.gateStore.InsertMessages(ctx, ms...); err != nil || !s.down.Load() {
		return err
	}
	return fmt.Errorf("insert messages: %w", context.DeadlineExceeded)
}

func (s *downStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	return insertThenRead(ctx, s, ms)
}

func (s *downStore) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	s.interrupts.Add(1)
	if s.down.Load() {
		select {
		case s.failed <- struct{}{}:
		default:
		}
		return persistence.Message{}, errors.New("server selection error: no primary")
	}
	return s.gateStore.InterruptMessage(ctx, ownerID, id, reason, at)
}

// endCountBus counts the frames ending each answer that its instance
// publishes (done or FrameAborted), by message id.
type endCountBus struct {
	*MemBus
	mu   sync.Mutex
	ends map[string]int
}

func (b *endCountBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	err := b.MemBus.Publish(ctx, a, f)
	if err == nil && (f.Type == protocol.TypeDone || f.Type == FrameAborted) {
		b.mu.Lock()
		b.ends[a.MessageID]++
		b.mu.Unlock()
	}
	return err
}

func (b *endCountBus) count(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ends[id]
}

// outageInstance starts instance A of tc over a downStore whose outage
// has begun, its bus counting the ends it publishes and rec its metrics.
func outageInstance(t *testing.T, tc *testCluster, rec *busMetricsRecorder) (*testHub, *downStore, *endCountBus) {
	t.Helper()
	var ds *downStore
	var bus *endCountBus
	a := tc.startWith(t, "A", func(mb *MemBus) Bus {
		bus = &endCountBus{MemBus: mb, ends: make(map[string]int)}
		return bus
	}, func(o *Options) {
		ds = &downStore{gateStore: o.Store.(*gateStore)}
		ds.down.Store(true)
		o.Store, o.Metrics = ds, rec
	})
	return a, ds, bus
}

// failClusterSends sends once into each of n new conversations on a, each
// send failing (its insert reported failed), and returns the answers'
// conversations and message ids (the ids the locks named).
func failClusterSends(t *testing.T, tc *testCluster, a *testHub, n int) (convs, answers []string) {
	t.Helper()
	for range n {
		conv := tc.conversation(t)
		answer := ""
		if _, err := a.Send(context.Background(), newTab(tc.user.ID, "s"), tc.user.ID,
			SendRequest{ConversationID: conv.ID, Content: "hi"}); err == nil {
			t.Fatal("a send whose insert failed did not fail")
		}
		msgs, err := tc.store.Messages(context.Background(), tc.user.ID, conv.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Role == persistence.RoleAssistant {
				answer = m.ID
			}
		}
		if answer == "" {
			t.Fatal("no answer row was stored: the test tests nothing")
		}
		convs, answers = append(convs, conv.ID), append(answers, answer)
	}
	return convs, answers
}

// TestClusterUnstartedDuringStoreOutage: in a cluster, sends whose
// answer's insert fails during a store outage (a MongoDB primary
// step-down: the rows may have been written) give their conversation's
// lock up at once, each answer's end (FrameAborted) published once, with
// no goroutine left per send and no store failure counted as a bus call;
// the rows are marked interrupted by the one sweep of late ends once the
// store is back, one call at a time, and another instance can send into
// the conversations. Before, abortLock left a goroutine per failed send
// retrying InterruptMessage (as a bus call, "interrupt an orphaned
// answer") for the whole outage, holding each lock until the store came
// back.
func TestClusterUnstartedDuringStoreOutage(t *testing.T) { // not parallel: counts goroutines
	const sends = 20
	tc := newTestCluster(t)
	rec := newBusMetricsRecorder()
	a, ds, bus := outageInstance(t, tc, rec)
	b := tc.start(t, "B")
	pauses := pausedSweep(a.Hub)
	idle := watchLateIdle(a.Hub)
	baseline := runtime.NumGoroutine()
	convs, answers := failClusterSends(t, tc, a, sends)
	for _, id := range convs {
		tc.waitUnlocked(t, id)
	}
	var p pause
	select {
	case p = <-pauses:
	case <-time.After(waitLimit):
		t.Fatalf("the sweep of late ends did not wait after a failed call in %s", waitLimit)
	}
	if err := waitEnds(a.Hub); err != nil {
		t.Fatalf("the locks' ends are not published: %v", err)
	}
	if n := runtime.NumGoroutine(); n > baseline+3 {
		t.Errorf("%d goroutines after %d failed sends, %d before", n, sends, baseline)
	}
	if n := ds.interrupts.Load(); n != 1 {
		t.Errorf("%d InterruptMessage calls before the wait after the first failure, want 1", n)
	}
	if c := rec.counts(); len(c.failed) != 0 {
		t.Errorf("store failures counted as bus call failures: %v", c.failed)
	}
	for _, id := range answers {
		if n := bus.count(id); n != 1 {
			t.Errorf("answer %s: its end published %d times, want once", id, n)
		}
		if m := tc.message(t, id); m.Status != persistence.StatusStreaming {
			t.Errorf("answer %s is %s during the outage, want streaming", id, m.Status)
		}
	}

	ds.down.Store(false) // the store is back
	p.fire <- time.Now()
	select {
	case <-idle:
	case <-time.After(waitLimit):
		t.Fatalf("%d answers still wait after %s", a.late.len(), waitLimit)
	}
	for _, id := range answers {
		if m := tc.message(t, id); m.Status != persistence.StatusInterrupted || m.Error != unstartedReason {
			t.Errorf("answer %s: %s %q, want interrupted %q", id, m.Status, m.Error, unstartedReason)
		}
	}
	onB := tc.follow(t, b, "b1", convs[0])
	res := tc.send(t, b, onB, convs[0], "again")
	run := b.model.next(t)
	run.say(t, "ok")
	close(run.tokens)
	if status := onB.waitDone(t, res.MessageID); status != string(persistence.StatusComplete) {
		t.Errorf("the send after the outage ended %s, want complete", status)
	}
}

// waitEnds waits, waitLimit at most, for h's lock ends to be published.
func waitEnds(h *Hub) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return h.waitPublished(ctx)
}

// TestClusterShutdownDuringStoreOutage: an instance whose sends failed
// during a store outage shuts down at once, without error, its locks
// given up; the rows stay streaming (no store call can end them). Before,
// Shutdown waited for each send's goroutine retrying InterruptMessage
// until its grace ran out and returned "publish the last frames to the
// cluster: context deadline exceeded", the locks still held.
func TestClusterShutdownDuringStoreOutage(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a, _, _ := outageInstance(t, tc, newBusMetricsRecorder())
	convs, answers := failClusterSends(t, tc, a, 5)
	// The shutdown before waited until its context ended, however long:
	// the bound only ends a hang.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, id := range convs {
		if holder, held := tc.mem.Lock(id); held {
			t.Errorf("conversation %s still locked by %+v after the shutdown", id, holder)
		}
	}
	for _, id := range answers {
		if m := tc.message(t, id); m.Status != persistence.StatusStreaming {
			t.Errorf("answer %s is %s after a shutdown with the store down, want streaming", id, m.Status)
		}
	}
}

// TestClusterTakeOverStoreFailureIsNoBusFailure: an instance ending the
// answer of a dead one while the store fails retries marking it
// interrupted until the store is back, and those failures are the
// store's: no cluster bus call failure is counted. Before, interruptOrphan
// retried through retry, which counted each as "interrupt an orphaned
// answer" in chatd_bus_call_failures_total and logged "cluster bus call
// failed".
func TestClusterTakeOverStoreFailureIsNoBusFailure(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	rec := newBusMetricsRecorder()
	ds := &downStore{failed: make(chan struct{}, 1)}
	b := tc.startWith(t, "B", nil, func(o *Options) {
		ds.gateStore = o.Store.(*gateStore)
		o.Store, o.Metrics = ds, rec
	})
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	a.model.next(t).say(t, "kept ")
	onB.waitText(t, res.MessageID, "kept ")
	tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept " })

	ds.down.Store(true)
	a.crashed = true
	tc.mem.Crash("A")
	for range 2 { // a failure, and one more after its retry
		select {
		case <-ds.failed:
		case <-time.After(waitLimit):
			t.Fatalf("B did not try to mark the answer interrupted in %s", waitLimit)
		}
	}
	if c := rec.counts(); len(c.failed) != 0 {
		t.Errorf("store failures counted as bus call failures: %v", c.failed)
	}
	ds.down.Store(false)
	if status := onB.waitDone(t, res.MessageID); status != string(persistence.StatusInterrupted) {
		t.Fatalf("done %q, want interrupted", status)
	}
	if c := rec.counts(); len(c.failed) != 0 || c.takenOver != 1 {
		t.Errorf("bus call failures %v, take-overs %d; want none and 1", c.failed, c.takenOver)
	}
}
