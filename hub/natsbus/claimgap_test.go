package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/protocol"
)

// TestClaimAfterUnstoredFrames: the owner of an answer dies after its
// followers received frames live that the stream never stored (its one
// frame in flight, a delta the stream refused before it). The claimant's
// frames come after the last stored frame; a follower that had those
// unstored frames must still get the claimant's stored text and exactly
// one done, and a follower that starts later gets the stored frames and
// the claimant's. Before, the claimant numbered its frames on from the
// last stored one: the follower dropped them as repeats of the unstored
// ones (the stored text lost; with two, the done too, and the answer never
// ended for it). "older claimant" publishes the end as a claimant that
// numbers from the last stored frame still does: the follower must not
// drop its done. The numbers the claimant skipped are no stored frame's:
// once the follower read the stream up to the claimant's first frame's
// Chatd-Prev it passes them over, looking for them no more. It looked
// gapTries times with backoff (about 0.75 s) and logged them as missing
// from JetStream, unless a read past Chatd-Prev happened to bring the
// claimant's frame itself: "leader reads only" reads as when the
// replicas do not answer direct gets, only up to Chatd-Prev.
func TestClaimAfterUnstoredFrames(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	for _, tc := range []struct {
		name     string
		unstored int  // frames the followers got live, never stored
		older    bool // the claimant numbers on from the last stored frame
		leader   bool // the follower reads through the stream leader only
	}{
		{name: "frame in flight", unstored: 1},
		{name: "refused delta and frame in flight", unstored: 2},
		{name: "older claimant", unstored: 2, older: true},
		{name: "leader reads only", unstored: 1, leader: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tag := strings.ReplaceAll(tc.name, " ", "-")
			owner, _ := newBus(t, c, "gap-owner-"+tag, 2*time.Second)
			claimer, recClaimer := newBus(t, c, "gap-claimer-"+tag, 2*time.Second)
			logs := make(logRecords, 1024)
			peer, _ := newBusWith(t, c, Options{InstanceID: "gap-peer-" + tag, LeaseTTL: 2 * time.Second,
				Logger: slog.New(logs)})
			waitHealthy(t, ctx, owner, claimer, peer)
			peer.idleAfter = time.Hour // only the live frames and the numbering count
			if tc.leader {
				peer.directOffUntil.Store(math.MaxInt64)
			}
			a := answer("c-gap-"+tag, "m-gap-"+tag, owner.InstanceID())
			if _, err := owner.Acquire(ctx, a); err != nil {
				t.Fatal(err)
			}
			frames := testFrames(a, 4+tc.unstored)
			stored, unstored := frames[:5], frames[5:5+tc.unstored]
			early := followCounting(ctx, peer, a)
			publish(t, ctx, owner, a, stored)
			owner.pubs.mu.Lock()
			pa := owner.pubs.answers[a.MessageID]
			owner.pubs.mu.Unlock()
			if _, err := owner.settle(ctx, pa); err != nil {
				t.Fatal(err)
			}
			// The follow's interest may not have reached the owner's
			// NATS server before these were published (a loaded machine:
			// none delivered in 60 s once), and with idleAfter an hour
			// nothing reads them from JetStream: asked to, as after a
			// reconnect, the follow reads what it missed (and delivers
			// nothing twice).
			peer.live.resyncAll()
			early.waitFrames(t, ctx, len(stored))
			injectUnstored(t, ctx, peer, a, 5, unstored)
			early.waitFrames(t, ctx, len(stored)+len(unstored))
			owner.Kill()

			recClaimer.waitFor(t, ctx, "orphan report", func() bool {
				return slices.ContainsFunc(recClaimer.orphans, func(o hub.AnswerRef) bool { return o == a })
			})
			mine := claimRetrying(t, ctx, claimer, a)
			end := []*protocol.Frame{
				{Type: hub.FrameStored, ConversationID: a.ConversationID, MessageID: a.MessageID, Seq: 40, Data: []byte(`{"text":"x"}`)},
				{Type: protocol.TypeDone, ConversationID: a.ConversationID, MessageID: a.MessageID, Seq: 40, Data: []byte(`{"type":"done"}`)},
			}
			wantEarly := append(slices.Clone(frames[:5+tc.unstored]), end...)
			if tc.older {
				publishAsOlderClaimant(t, ctx, claimer, mine, 5, end)
				// Its stored text, numbered like an unstored frame, is
				// dropped (the hub fills the text from the store on the
				// done); its done is not.
				wantEarly = append(slices.Clone(frames[:5+tc.unstored]), end[1])
			} else {
				publish(t, ctx, claimer, mine, end)
			}
			r := early.result(t, ctx)
			if r.err != nil {
				t.Fatalf("early follower: %v", r.err)
			}
			checkFrames(t, "early follower", r.frames, wantEarly)
			for len(logs) > 0 { // the follow logs before it delivers the done
				if rec := <-logs; strings.Contains(rec.Message, "missing") {
					t.Errorf("early follower logged %q (from %s to %s)", rec.Message, logAttr(rec, "from"), logAttr(rec, "to"))
				}
			}
			late := <-followAsync(ctx, peer, a)
			if late.err != nil {
				t.Fatalf("late follower: %v", late.err)
			}
			checkFrames(t, "late follower", late.frames, append(slices.Clone(stored), end...))
		})
	}
}

// counting is a follow whose frames the test can wait for one by one.
type counting struct {
	mu     sync.Mutex
	frames []*protocol.Frame
	more   chan struct{} // buffered (1): a frame came
	res    chan followResult
}

// followCounting follows a on b in the background.
func followCounting(ctx context.Context, b *Bus, a hub.AnswerRef) *counting {
	c := &counting{more: make(chan struct{}, 1), res: make(chan followResult, 1)}
	go func() {
		err := b.Follow(ctx, a, func(f *protocol.Frame) {
			c.mu.Lock()
			c.frames = append(c.frames, f)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		})
		c.mu.Lock()
		got := slices.Clone(c.frames)
		c.mu.Unlock()
		c.res <- followResult{got, err}
	}()
	return c
}

// waitFrames waits until the follow delivered n frames.
func (c *counting) waitFrames(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got := len(c.frames)
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.more:
		case <-ctx.Done():
			t.Fatalf("the follow delivered %d frames, want %d", got, n)
		}
	}
}

// result waits for the follow's end.
func (c *counting) result(t *testing.T, ctx context.Context) followResult {
	t.Helper()
	select {
	case r := <-c.res:
		return r
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, f := range c.frames {
			t.Logf("frame %d: %s seq %d %s", i, f.Type, f.Seq, f.Data)
		}
		t.Fatal("the follow never ended")
		return followResult{}
	}
}

// injectUnstored sends frames, numbered on from the stored frame number
// last, to the live follows of a on the NATS server of follower, as its
// owner would, but refused by the stream (a wrong expected last sequence):
// frames the follows got and the stream never stored.
func injectUnstored(t *testing.T, ctx context.Context, follower *Bus, a hub.AnswerRef, last uint64, frames []*protocol.Frame) {
	t.Helper()
	stream, subj := follower.res.Load().stream, follower.answerSubject(a.MessageID)
	n, prev, err := follower.lastNumber(ctx, stream, subj)
	if err != nil || n != last {
		t.Fatalf("last stored frame %d (%v), want %d", n, err, last)
	}
	nc, err := nats.Connect(follower.nc.ConnectedUrl(), nats.UserInfo("chatd", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i, f := range frames {
		h := frameHeader(f, last+1+uint64(i), prev, frameID(a, f))
		h.Set(jetstream.ExpectedLastSeqHeader, "1")
		if err := nc.PublishMsg(&nats.Msg{Subject: subj, Header: h, Data: f.Data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, err := follower.lastNumber(ctx, stream, subj); err != nil || n != last {
		t.Fatalf("after the injection the last stored frame is %d (%v), want %d", n, err, last)
	}
}

// publishAsOlderClaimant stores frames as a claimant that numbers them on
// from the last stored frame, last, would.
func publishAsOlderClaimant(t *testing.T, ctx context.Context, b *Bus, a hub.AnswerRef, last uint64, frames []*protocol.Frame) {
	t.Helper()
	js, err := jetstream.New(b.nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := b.answerSubject(a.MessageID)
	_, prev, err := b.lastNumber(ctx, b.res.Load().stream, subj)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: f.Data,
			Header: frameHeader(f, last+1+uint64(i), prev, frameID(a, f))})
		if err != nil {
			t.Fatalf("publish %s: %v", f.Type, err)
		}
		prev = ack.Sequence
	}
}

// claimRetrying claims a on b as the hub does: a claim JetStream could
// not answer is tried again.
func claimRetrying(t *testing.T, ctx context.Context, b *Bus, a hub.AnswerRef) hub.AnswerRef {
	t.Helper()
	for attempt := 0; ; attempt++ {
		mine, err := b.Claim(ctx, a)
		if err == nil {
			return mine
		}
		if !errors.Is(err, hub.ErrBusUnavailable) || ctx.Err() != nil {
			t.Fatalf("claim: %v", err)
		}
		wait(ctx, backoff(attempt))
	}
}
