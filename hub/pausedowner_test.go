package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestClusterPausedOwnerStartsNothing: A takes a conversation's lock for
// a send and stalls before its answer's row is stored (a process or VM
// paused, an insert stuck while A is cut off from the bus) for longer
// than its lease. B claims the answer, finds no row, tells the followers
// that it never started (FrameAborted) and releases the lock; B may then
// start another answer there. When A's insert lands, A must not run its
// answer without the lock: nothing goes upstream, the answer is stored
// interrupted (no text) and A's tab gets its done, interrupted, and
// nothing of it reaches the bus after B's end. When A cannot reach the
// bus to check, it does the same: it cannot know that it still holds
// the lock.
func TestClusterPausedOwnerStartsNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		second bool // B starts another answer before A's insert lands
		cutOff bool // A is still cut off from the bus when its insert lands
	}{
		{name: "lock free"},
		{name: "another answer started", second: true},
		{name: "still cut off", cutOff: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B")
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)

			waiting, hold := a.store.hold()
			release := sync.OnceFunc(hold)
			t.Cleanup(release)
			sent := make(chan Result, 1)
			go func() {
				res, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi"})
				if err != nil {
					t.Errorf("send on A: %v", err)
				}
				sent <- res
			}()
			select {
			case <-waiting: // A holds the lock; its rows are not stored yet
			case <-time.After(waitLimit):
				t.Fatal("A's insert never started")
			}
			lock, held := tc.mem.Lock(conv.ID)
			if !held || lock.Instance != "A" {
				t.Fatalf("lock %+v held %v, want A's", lock, held)
			}
			a.crashed = tt.cutOff
			tc.mem.Crash("A") // A's lease expires while it is paused
			tc.waitUnlocked(t, conv.ID)
			if !tt.cutOff {
				tc.mem.Rejoin("A")
			}
			var second Result
			if tt.second {
				second = tc.send(t, b, onB, conv.ID, "meanwhile")
				// A's tab follows it (mirrored) before A resumes.
				onA.waitUntil(t, "B's answer mirrored", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
					return countType(fs, second.MessageID, protocol.TypeMessage) > 0
				})
			}

			release() // A resumes: its insert lands
			waitWoken(t, onA.wake, func() bool {
				select {
				case r := <-a.model.runs:
					t.Fatalf("A sent its answer upstream without the conversation's lock: %+v", r.req.Messages)
				default:
				}
				return countType(snapshotFrames(onA), lock.MessageID, protocol.TypeDone) > 0
			}, func() string { return "A's tab got no done of its answer:\n" + dump(snapshotFrames(onA)) })
			res := <-sent
			if res.MessageID != lock.MessageID {
				t.Fatalf("A acked answer %s, the lock named %s", res.MessageID, lock.MessageID)
			}
			if st := onA.waitDone(t, res.MessageID); st != "interrupted" {
				t.Fatalf("A's tab: done %q, want interrupted", st)
			}
			stored := tc.message(t, res.MessageID)
			if stored.Status != persistence.StatusInterrupted || stored.Content != "" || stored.Error == "" {
				t.Fatalf("A's answer stored %q %q (error %q), want interrupted, no text, a reason", stored.Status, stored.Content, stored.Error)
			}
			if tt.cutOff {
				tc.mem.Rejoin("A")
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if err := a.waitPublished(ctx); err != nil {
				t.Fatal(err)
			}
			if frames := streamFrames(tc.mem, res.MessageID); len(frames) != 1 || frames[0].Type != FrameAborted {
				t.Fatalf("A's answer's stream, want B's aborted alone:\n%s", dump(frames))
			}
			if n := len(messageFrames(snapshotFrames(onB), res.MessageID)); n != 0 {
				t.Fatalf("B's tab got %d frames of A's answer, which B said never started:\n%s", n, dump(snapshotFrames(onB)))
			}
			select {
			case r := <-a.model.runs:
				t.Fatalf("A sent its answer upstream: %+v", r.req.Messages)
			default:
			}
			if tt.second {
				run := b.model.next(t)
				run.say(t, "B runs ")
				close(run.tokens)
				for _, s := range []*tab{onA, onB} {
					s.waitText(t, second.MessageID, "B runs ")
					if st := s.waitDone(t, second.MessageID); st != "complete" {
						t.Fatalf("tab %s: B's answer done %q, want complete", s.id, st)
					}
				}
			}
			tc.waitUnlocked(t, conv.ID)
		})
	}
}

// messageFrames returns the frames of message id.
func messageFrames(frames []*protocol.Frame, id string) []*protocol.Frame {
	var out []*protocol.Frame
	for _, f := range frames {
		if f.MessageID == id {
			out = append(out, f)
		}
	}
	return out
}

// blipBus is a MemBus whose Running fails (ErrNotSent, as a NATS
// reconnect makes it) the next fail times once armed.
type blipBus struct {
	*MemBus
	mu   sync.Mutex
	fail int
}

func (b *blipBus) Running(ctx context.Context, conversationID string) (AnswerRef, bool, error) {
	b.mu.Lock()
	failing := b.fail > 0
	if failing {
		b.fail--
	}
	b.mu.Unlock()
	if failing {
		return AnswerRef{}, false, fmt.Errorf("read the lock: %w", ErrNotSent)
	}
	return b.MemBus.Running(ctx, conversationID)
}

// TestClusterBusBlipKeepsSend: a bus that fails for a moment (four reads
// in a row: some 1.5 s of a NATS reconnect) just as a send's answer is
// stored does not end the send: the lock is read again until the bus
// answers, and names the answer, which runs. The first version of the
// check gave up after four reads (0.7 s) and ended such an answer as
// "stalled", nothing asked of the model.
func TestClusterBusBlipKeepsSend(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	var blip *blipBus
	a := tc.startWith(t, "A", func(m *MemBus) Bus { blip = &blipBus{MemBus: m}; return blip }, nil)
	tc.hubs = append(tc.hubs, a)
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	waiting, hold := a.store.hold()
	release := sync.OnceFunc(hold)
	t.Cleanup(release)
	sent := make(chan Result, 1)
	go func() {
		res, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi"})
		if err != nil {
			t.Errorf("send on A: %v", err)
		}
		sent <- res
	}()
	select {
	case <-waiting: // the lock is A's; the answer's row is not stored yet
	case <-time.After(waitLimit):
		t.Fatal("A's insert never started")
	}
	blip.mu.Lock()
	blip.fail = 4
	blip.mu.Unlock()
	release()
	res := <-sent
	run := a.model.next(t)
	run.say(t, "still here")
	close(run.tokens)
	onA.waitText(t, res.MessageID, "still here")
	if st := onA.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("done %q, want complete: a moment's bus failure ended the send", st)
	}
}
