package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
)

// TestClusterCancelThroughFlakyBus: Stop pressed in a tab on B, for an
// answer running on A, while B's bus fails: the lookup of the running
// answer (a NATS leader election) or the stop sent to A (its request
// timing out while B's connection is cut) fails for a moment, or the stop is lost on its way
// (A got none, though the call reported no error). Each is tried again,
// and a lost stop sent again, until the answer ends: the upstream request
// is aborted, every tab gets a done of status cancelled, CancelAnswer
// returns nil. A bus that keeps failing until FinishTimeout makes
// CancelAnswer return unavailable (the client asks again) and the answer
// runs on; so does a bus that is down (ErrNotSent), at once, asked once. It used to be answered nil in every case, the answer streaming
// on to complete: the lookup was not tried again, the stop was only
// logged.
func TestClusterCancelThroughFlakyBus(t *testing.T) {
	t.Parallel()
	const always = math.MaxInt64
	cases := []struct {
		name                       string
		lookups, controls, dropped int64 // failures of each, in a row (always: every call)
		down                       bool  // the bus is down while the cancel is made
		unavailable                bool
	}{
		{name: "lookup fails once", lookups: 1},
		{name: "stop fails once", controls: 1},
		{name: "stop fails a few times", controls: 3},
		{name: "stop lost once", dropped: 1},
		{name: "lookup keeps failing", lookups: always, unavailable: true},
		{name: "stop keeps failing", controls: always, unavailable: true},
		{name: "bus down", down: true, unavailable: true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A")
			a := tc.hubs[0]
			flaky := &flakyStopBus{}
			finish := waitLimit
			if tt.unavailable {
				finish = 200 * time.Millisecond // how long B tries; B runs no answer of its own
			}
			b := tc.startWith(t, "B", func(m *MemBus) Bus { flaky.MemBus = m; return flaky },
				func(o *Options) { o.FinishTimeout = finish })
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)
			res := tc.send(t, a, onA, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, "partial ")
			onB.waitText(t, res.MessageID, "partial ")
			flaky.lookups.Store(tt.lookups)
			flaky.controls.Store(tt.controls)
			flaky.dropped.Store(tt.dropped)
			flaky.calls.Store(0)
			tc.mem.SetDown(tt.down)

			err := b.CancelAnswer(context.Background(), tc.user.ID, conv.ID, res.MessageID)
			tc.mem.SetDown(false)
			flaky.lookups.Store(0)
			flaky.controls.Store(0)
			if n := flaky.calls.Load(); tt.down && n != 1 {
				t.Fatalf("%d lookups with the bus down, want 1", n)
			}
			if tt.unavailable {
				if errCode(err) != protocol.CodeUnavailable {
					t.Fatalf("CancelAnswer: %v, want unavailable", err)
				}
				run.say(t, "more") // not aborted: the answer runs on
				close(run.tokens)
				tabs := []*tab{onA, onB}
				if tt.down {
					tabs = tabs[:1] // the tab on B was told to reconnect
				}
				for _, s := range tabs {
					if st := s.waitDone(t, res.MessageID); st != "complete" {
						t.Fatalf("tab %s: done %q, want complete", s.id, st)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("CancelAnswer: %v", err)
			}
			select {
			case <-run.aborted:
			default:
				t.Fatal("CancelAnswer returned, the upstream request on A still runs")
			}
			tc.wantCancelled(t, res.MessageID, "partial ", onA, onB)
		})
	}
}

// flakyStopBus is a MemBus whose next lookups of a running answer, and
// stops sent to another instance, fail as a bus that cannot be reached
// for a moment (lookups, controls: how many in a row), and whose next
// dropped stops are lost on their way, reported sent; calls counts its
// lookups.
type flakyStopBus struct {
	*MemBus
	lookups, controls, dropped atomic.Int64
	calls                      atomic.Int64 // lookups made
}

func (b *flakyStopBus) Running(ctx context.Context, convID string) (AnswerRef, bool, error) {
	b.calls.Add(1)
	if b.lookups.Add(-1) >= 0 {
		return AnswerRef{}, false, errors.Join(ErrBusUnavailable, errors.New("no stream leader"))
	}
	return b.MemBus.Running(ctx, convID)
}

func (b *flakyStopBus) Control(ctx context.Context, a AnswerRef, kind ControlKind) error {
	if b.controls.Add(-1) >= 0 {
		return fmt.Errorf("control %s: %w: timeout", a.MessageID, ErrBusUnavailable)
	}
	if b.dropped.Add(-1) >= 0 {
		return nil
	}
	return b.MemBus.Control(ctx, a, kind)
}

// TestClusterStopLookupBoundedForDeleteAndRegenerate: a deletion of a
// conversation (CancelConversation) and a regenerate made on B while the
// bus keeps failing to say which answer runs there (JetStream without a
// leader; the connection up) ask lookupAttempts times, as a following tab
// does, and go on: the deletion without the stop (its UserEvent.Deleted
// aborts the answer), the regenerate refused unavailable. Only a user's
// cancel asks until FinishTimeout. Both used to ask until FinishTimeout
// (the regenerate until its context ended), holding a DELETE 10 s, an
// account deletion 10 s per conversation, a WebSocket worker 30 s.
func TestClusterStopLookupBoundedForDeleteAndRegenerate(t *testing.T) {
	t.Parallel()
	// The lookups (LookupPause 1 ns) take far less than finish, which only
	// bounds them: at 2 s a stall of the machine cut them short of
	// lookupAttempts. The old code asked until it ran out.
	const finish = waitLimit
	for _, what := range []string{"delete", "regenerate"} {
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A")
			a := tc.hubs[0]
			flaky := &flakyStopBus{}
			b := tc.startWith(t, "B", func(m *MemBus) Bus { flaky.MemBus = m; return flaky },
				func(o *Options) { o.FinishTimeout = finish; o.LookupPause = 1 })
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			res := tc.send(t, a, onA, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, "partial ")
			onA.waitText(t, res.MessageID, "partial ")
			flaky.lookups.Store(math.MaxInt64)
			flaky.calls.Store(0)

			switch what {
			case "delete":
				b.CancelConversation(tc.user.ID, conv.ID)
			case "regenerate":
				ctx, cancel := context.WithTimeout(context.Background(), finish)
				_, err := b.Regenerate(ctx, nil, tc.user.ID, RegenerateRequest{ConversationID: conv.ID})
				cancel()
				if errCode(err) != protocol.CodeUnavailable {
					t.Fatalf("Regenerate: %v, want unavailable", err)
				}
			}
			if n := flaky.calls.Load(); n != lookupAttempts {
				t.Fatalf("%d lookups, want %d", n, lookupAttempts)
			}
			flaky.lookups.Store(0)
			close(run.tokens)
			if st := onA.waitDone(t, res.MessageID); st != "complete" {
				t.Fatalf("done %q, want complete", st)
			}
		})
	}
}

// TestClusterCancelOfADeadInstancesAnswer: A dies with an answer running
// and Stop is pressed on B before A's lease expires: every stop B sends
// finds A gone from the bus (ErrInstanceGone, NATS's no responders), and
// the answer's done comes only from the take-over once the lease expires,
// after B's FinishTimeout. CancelAnswer returns nil, as it did before
// 2ed557b (the take-over ends the answer): it returned unavailable, the
// tab said "Could not stop", and each press held B's WebSocket worker
// FinishTimeout for nothing.
func TestClusterCancelOfADeadInstancesAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	a := tc.hubs[0]
	dead := &deadOwnerBus{}
	b := tc.startWith(t, "B", func(m *MemBus) Bus { dead.MemBus = m; return dead },
		func(o *Options) { o.FinishTimeout = 200 * time.Millisecond })
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	a.model.next(t).say(t, "partial ")
	onB.waitText(t, res.MessageID, "partial ")
	a.crashed = true
	dead.gone.Store("A") // its process died; its lease has not expired yet

	if err := b.CancelAnswer(context.Background(), tc.user.ID, conv.ID, res.MessageID); err != nil {
		t.Fatalf("CancelAnswer of a dead instance's answer: %v, want nil", err)
	}
	if n := dead.refused.Load(); n == 0 {
		t.Fatal("no stop was sent to A")
	}
	tc.mem.Crash("A") // the lease expires: B takes the answer over
	if st := onB.waitDone(t, res.MessageID); st != "interrupted" {
		t.Fatalf("done %q, want interrupted", st)
	}
}

// deadOwnerBus is a MemBus whose stops sent to instance gone fail as
// NATS's do for an instance whose process died (no responders) while its
// lease lasts; refused counts them.
type deadOwnerBus struct {
	*MemBus
	gone    atomic.Value // string
	refused atomic.Int64
}

func (b *deadOwnerBus) Control(ctx context.Context, a AnswerRef, kind ControlKind) error {
	if gone, _ := b.gone.Load().(string); gone == a.Instance {
		b.refused.Add(1)
		return fmt.Errorf("control %s: %w: %w: %s", a.MessageID, ErrBusUnavailable, ErrInstanceGone, a.Instance)
	}
	return b.MemBus.Control(ctx, a, kind)
}
