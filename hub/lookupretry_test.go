package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestClusterSubscribeLookupRetried: a tab that begins to follow a
// conversation while the bus fails for a moment to say which answer runs
// there is not closed: the lookup is tried again, and the tab gets the
// answer running on the other instance. Only a bus that keeps failing
// (lookupAttempts lookups) closes it with 1001 after an unavailable error,
// as before. The tab used to be closed at the first failure.
func TestClusterSubscribeLookupRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fails  int64
		closed bool
	}{
		{"one failure", 1, false},
		{"all but the last", lookupAttempts - 1, false},
		{"every lookup", lookupAttempts, true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := runningBesideFlakyBus(t)
			tc, b, flaky, conv, onA, res, run := f.tc, f.b, f.flaky, f.conv, f.onA, f.res, f.run
			flaky.fails.Store(tt.fails)

			onB := tc.follow(t, b, "b1", conv.ID)
			if got, want := flaky.calls.Load(), min(tt.fails+1, lookupAttempts); got != want {
				t.Fatalf("%d lookups, want %d", got, want)
			}
			if tt.closed {
				onB.waitUntil(t, "error unavailable and close", func(fs []*protocol.Frame, closed protocol.CloseCode) bool {
					return closed == protocol.CloseGoingAway && countType(fs, "", protocol.TypeError) == 1
				})
			} else {
				onB.waitText(t, res.MessageID, "one ")
				run.say(t, "two")
				onB.waitText(t, res.MessageID, "one two")
			}
			close(run.tokens)
			onA.waitDone(t, res.MessageID)
			if frames, closed := onB.snapshot(); !tt.closed && (closed != 0 || countType(frames, "", protocol.TypeError) != 0) {
				t.Fatalf("tab on B closed %d after a lookup that failed %d times; frames:\n%s", closed, tt.fails, dump(frames))
			}
		})
	}
}

// flakySetUp is an answer running on hub A, "one " streamed to tab a1,
// beside hub B, whose bus is flaky (no failure set yet, no lookup made).
type flakySetUp struct {
	tc    *testCluster
	b     *testHub
	flaky *flakyLookupBus
	conv  persistence.Conversation
	onA   *tab
	res   Result
	run   *scriptRun
}

// runningBesideFlakyBus starts the set-up of the lookup-retry tests.
func runningBesideFlakyBus(t *testing.T) flakySetUp {
	t.Helper()
	f := flakySetUp{tc: newTestCluster(t, "A"), flaky: &flakyLookupBus{}}
	a := f.tc.hubs[0]
	f.b = f.tc.startWith(t, "B", func(m *MemBus) Bus { f.flaky.MemBus = m; return f.flaky },
		func(o *Options) { o.LookupPause = 1 })
	f.conv = f.tc.conversation(t)
	f.onA = f.tc.follow(t, a, "a1", f.conv.ID)
	f.res = f.tc.send(t, a, f.onA, f.conv.ID, "hi")
	f.run = a.model.next(t)
	f.run.say(t, "one ")
	f.onA.waitText(t, f.res.MessageID, "one ")
	if n := f.flaky.calls.Load(); n != 0 {
		t.Fatalf("%d lookups on B before the test's", n)
	}
	return f
}

// flakyLookupBus is a MemBus whose first fails lookups of a running
// answer fail as a bus that cannot be reached for a moment.
type flakyLookupBus struct {
	*MemBus
	fails atomic.Int64
	calls atomic.Int64
}

func (b *flakyLookupBus) Running(ctx context.Context, convID string) (AnswerRef, bool, error) {
	b.calls.Add(1)
	if b.fails.Add(-1) >= 0 {
		return AnswerRef{}, false, fmt.Errorf("read lock: %w", ErrBusUnavailable)
	}
	return b.MemBus.Running(ctx, convID)
}

// TestClusterResumeLookupRetried: a tab that resumes an answer running on
// another instance while the bus fails for a moment to say which answer
// runs there resumes it: the lookup is tried again, as for a tab that
// begins to follow (lookupRunning). Only a bus that keeps failing
// (lookupAttempts lookups) refuses the resume, unavailable. The resume
// used to be refused at the first failure.
func TestClusterResumeLookupRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		fails   int64
		refused bool
	}{
		{"one failure", 1, false},
		{"all but the last", lookupAttempts - 1, false},
		{"every lookup", lookupAttempts, true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := runningBesideFlakyBus(t)
			tc, b, flaky, conv, onA, res, run := f.tc, f.b, f.flaky, f.conv, f.onA, f.res, f.run
			flaky.fails.Store(tt.fails)
			seq := int64(len("one "))
			onB := newTab(tc.user.ID, "b1")
			err := b.Subscribe(context.Background(), onB, tc.user.ID,
				SubscribeRequest{ConversationID: conv.ID, MessageID: res.MessageID, LastSeq: &seq})
			if got, want := flaky.calls.Load(), min(tt.fails+1, lookupAttempts); got != want {
				t.Errorf("%d lookups, want %d", got, want)
			}
			if tt.refused {
				if errCode(err) != protocol.CodeUnavailable {
					t.Fatalf("resume while every lookup failed: %v, want unavailable", err)
				}
			} else {
				if err != nil {
					t.Fatalf("resume after %d failed lookups: %v", tt.fails, err)
				}
				run.say(t, "two")
				onB.waitUntil(t, "the text after its cursor", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
					got, _, err := answerOf(fs, res.MessageID, seq)
					return err == nil && got == "two"
				})
			}
			close(run.tokens)
			onA.waitDone(t, res.MessageID)
		})
	}
}
