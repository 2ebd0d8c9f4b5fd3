package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/protocol"
)

// TestPublishPipeline covers publishing with one frame in flight: a delta
// after the first returns before JetStream acknowledged it, the next
// frame goes out only once it is stored (its acknowledgement read, or,
// the acknowledgement lost, the frame found stored on the answer's
// subject rather than sent again), and the first and
// the done return only once stored. Whatever acknowledgements are lost,
// the stream holds every frame once, in order, numbered 1, 2, 3, ... with
// each frame's hdrPrev the stream sequence of the one before, and a
// follower on another instance gets the answer byte-exact.
func TestPublishPipeline(t *testing.T) {
	t.Parallel()
	_, ctx, owner, peer := ownerAndPeer(t, "pipe", 60*time.Second)
	// A lost acknowledgement costs the wait; one not read within it on a
	// loaded machine (200 ms was overrun in a run beside other suites)
	// is taken for lost, and "none lost" then counts no acknowledgement.
	owner.ackWait = 2 * time.Second
	const deltas = 8 // frames: 1 message, 2..9 deltas, 10 done
	cases := []struct {
		name string
		lose []uint64 // the frames whose first acknowledgement is lost
	}{
		{"none lost", nil},
		{"a delta's lost", []uint64{4}},
		{"two deltas' in a row lost", []uint64{5, 6}},
		{"the first frame's lost", []uint64{1}},
		{"the done's lost", []uint64{deltas + 2}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := answer(fmt.Sprintf("c-pipe-%d", i), fmt.Sprintf("m-pipe-%d", i), owner.InstanceID())
			frames := testFrames(a, deltas)
			var mu sync.Mutex
			acks := map[uint64]int{} // acknowledgements read, by frame number
			drop := func(m *nats.Msg) bool {
				if !strings.Contains(m.Subject, ".") || m.Header.Get("Status") == "503" {
					return false // not an acknowledgement: no stream took the frame (see publishRetrying)
				}
				n, _ := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
				mu.Lock()
				defer mu.Unlock()
				acks[n]++
				for _, l := range tc.lose {
					if l == n && acks[n] == 1 {
						return true
					}
				}
				return false
			}
			owner.dropAck.Store(&drop)
			ackCount := func(n uint64) int {
				mu.Lock()
				defer mu.Unlock()
				return acks[n]
			}
			res := followAsync(ctx, peer, a)
			for j, f := range frames {
				n := uint64(j + 1)
				if err := publishRetrying(ctx, owner, a, f); err != nil {
					t.Fatalf("publish frame %d: %v", n, err)
				}
				pipelined := n > 1 && n < uint64(len(frames))
				if got := ackCount(n); pipelined && got != 0 || !pipelined && got == 0 {
					t.Fatalf("frame %d: %d acknowledgements read when Publish returned; pipelined: %v", n, got, pipelined)
				}
				if pipelined && j > 1 && ackCount(n-1) == 0 {
					t.Fatalf("frame %d went out before frame %d was acknowledged", n, n-1)
				}
			}
			stored := storedFrames(t, ctx, owner, a.MessageID)
			if len(stored) != len(frames) {
				t.Fatalf("the stream holds %d frames, want %d", len(stored), len(frames))
			}
			var prev uint64
			for j, m := range stored {
				f, n, err := decodeFrame(a.MessageID, m.hdr, m.data)
				if err != nil || n != uint64(j+1) || string(f.Data) != string(frames[j].Data) {
					t.Fatalf("stored frame %d: number %d, %q, %v; want number %d, %q", j, n, f.Data, err, j+1, frames[j].Data)
				}
				if p := m.hdr.Get(hdrPrev); p != strconv.FormatUint(prev, 10) {
					t.Fatalf("stored frame %d: prev %s, want %d", j+1, p, prev)
				}
				prev = m.seq
			}
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkFrames(t, "follower", r.frames, frames)
			for _, l := range tc.lose {
				if got := ackCount(l); got != 1 {
					t.Fatalf("frame %d: %d acknowledgements, want 1 (lost, then found stored, not sent again)", l, got)
				}
			}
			owner.pubs.mu.Lock()
			_, left := owner.pubs.answers[a.MessageID]
			owner.pubs.mu.Unlock()
			if left {
				t.Fatal("the answer's publishing state outlived its done")
			}
		})
	}
}

// storedFrames reads every frame stored for an answer.
func storedFrames(t *testing.T, ctx context.Context, b *Bus, messageID string) []storedMsg {
	t.Helper()
	var got []storedMsg
	if _, err := b.readStored(ctx, b.res.Load().stream, b.answerSubject(messageID), 0, 0, func(m storedMsg) bool {
		got = append(got, m)
		return true
	}); err != nil {
		t.Fatalf("read the stored frames of %s: %v", messageID, err)
	}
	return got
}

// TestPublishIdleAnswerUnsubscribes: an answer that published nothing for
// pubIdle (its publisher stopped without a done) loses its
// acknowledgement subscription when another answer starts, and if it
// publishes again after all, it subscribes again and its numbering goes
// on, its frame in flight confirmed first.
func TestPublishIdleAnswerUnsubscribes(t *testing.T) {
	t.Parallel()
	_, ctx, owner, peer := ownerAndPeer(t, "idle", 30*time.Second)
	owner.ackWait = 200 * time.Millisecond
	stopped := answer("c-idle", "m-idle", owner.InstanceID())
	frames := testFrames(stopped, 4)
	res := followAsync(ctx, peer, stopped)
	publish(t, ctx, owner, stopped, frames[:3]) // the third is in flight
	state := func(id string) *pubAnswer {
		owner.pubs.mu.Lock()
		defer owner.pubs.mu.Unlock()
		return owner.pubs.answers[id]
	}
	s := state(stopped.MessageID)
	owner.pubs.mu.Lock()
	s.used = time.Now().Add(-owner.pubs.idle - time.Minute)
	owner.pubs.mu.Unlock()

	other := answer("c-idle-2", "m-idle-2", owner.InstanceID())
	publish(t, ctx, owner, other, testFrames(other, 1)[:1])
	owner.pubs.mu.Lock()
	sub, inbox := s.sub, s.inbox
	owner.pubs.mu.Unlock()
	if sub != nil || inbox != "" {
		t.Fatal("the idle answer kept its acknowledgement subscription")
	}
	if s := state(other.MessageID); s == nil {
		t.Fatal("the new answer has no publishing state")
	}

	publish(t, ctx, owner, stopped, frames[3:])
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkFrames(t, "follower", r.frames, frames)
	if got := storedFrames(t, ctx, owner, stopped.MessageID); len(got) != len(frames) {
		t.Fatalf("the stream holds %d frames, want %d", len(got), len(frames))
	}
}

// TestPublishIdleAnswersBounded: the publishing state of answers whose
// publisher stopped without a done or a Release is set aside once idle,
// and at most maxAsleep of them are kept (the one idle longest goes
// first): it was kept for every such answer, for as long as the instance
// lived. One kept that publishes again after all takes its state back:
// its numbering goes on.
func TestPublishIdleAnswersBounded(t *testing.T) {
	t.Parallel()
	_, ctx, owner, _ := ownerAndPeer(t, "bounded", 30*time.Second)
	owner.pubs.mu.Lock()
	owner.pubs.idle = time.Nanosecond // every other answer is idle when one starts
	owner.pubs.maxAsleep = 2
	owner.pubs.mu.Unlock()
	var stopped []hub.AnswerRef
	for i := range 5 {
		a := answer(fmt.Sprintf("c-bounded-%d", i), fmt.Sprintf("m-bounded-%d", i), owner.InstanceID())
		publish(t, ctx, owner, a, testFrames(a, 1)[:2]) // its message and a delta, then nothing
		stopped = append(stopped, a)
	}
	owner.pubs.mu.Lock()
	active, asleep := len(owner.pubs.answers), len(owner.pubs.asleep)
	_, kept := owner.pubs.asleep[stopped[3].MessageID]
	owner.pubs.mu.Unlock()
	if active != 1 || asleep != 2 || !kept {
		t.Fatalf("publishing state of %d answers and %d set aside (the last but one kept: %v), want 1 and 2 (true)",
			active, asleep, kept)
	}
	back := stopped[3]
	publish(t, ctx, owner, back, testFrames(back, 1)[2:]) // its done: stored once Publish returns
	stored := storedFrames(t, ctx, owner, back.MessageID)
	if len(stored) != 3 {
		t.Fatalf("the stream holds %d frames of the answer back, want 3", len(stored))
	}
	for j, m := range stored {
		if _, n, err := decodeFrame(back.MessageID, m.hdr, m.data); err != nil || n != uint64(j+1) {
			t.Fatalf("stored frame %d: number %d (%v)", j+1, n, err)
		}
	}
}

// TestPublishClaimedAnswerForgotten: an answer whose publisher stops
// because another instance claimed it (a split: its lease expired while
// it published) never publishes its done here. When its publisher learns
// of the claim it releases the answer (a Release that leaves the
// claimant's lock alone), and the publishing state kept for the answer
// goes with it: the count of answers published here returns to zero.
// It was kept, with its acknowledgement subscription, for every such answer.
func TestPublishClaimedAnswerForgotten(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The owner renews its lease every 20 s: the test plays its expiry by
	// deleting the lease, and nothing renews it before the claim.
	owner, _ := newBus(t, c, "forget-owner", time.Minute)
	claimer, _ := newBus(t, c, "forget-claimer", time.Second)
	waitHealthy(t, ctx, owner, claimer)
	a := answer("c-forget", "m-forget", owner.InstanceID())
	if _, err := owner.Acquire(ctx, a); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, owner, a, testFrames(a, 3)[:3])
	if n := publishing(owner); n != 1 {
		t.Fatalf("%d answers published, want 1", n)
	}
	leases, err := testJetStream(t, c).KeyValue(ctx, owner.name("leases"))
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Delete(ctx, token(owner.InstanceID())); err != nil {
		t.Fatal(err)
	}
	mine, err := claimer.Claim(ctx, a)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}

	// What the hub's publisher does: it finds the lock names another
	// instance, and releases its answer.
	if got, ok, err := owner.Running(ctx, a.ConversationID); err != nil || !ok || got != mine {
		t.Fatalf("the lock names %+v (%v, %v), want the claimant's %+v", got, ok, err, mine)
	}
	if err := owner.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := publishing(owner); n != 0 {
		t.Fatalf("%d answers published after the claimed one was released, want 0", n)
	}
	if got, ok, _ := owner.Running(ctx, a.ConversationID); !ok || got != mine {
		t.Fatalf("the owner's release changed the claimant's lock: %+v %v", got, ok)
	}
}

// publishing is how many answers b keeps publishing state for.
func publishing(b *Bus) int {
	b.pubs.mu.Lock()
	defer b.pubs.mu.Unlock()
	return len(b.pubs.answers)
}

// TestPublishResendsAfterReconnect: a frame whose acknowledgement was
// lost with the connection (its NATS node went away, the client moved to
// another) is sent again as soon as the connection is back, not when
// ackWait (5 s) has passed since it was sent: every answer published
// through a NATS node that restarts stalled that long for the followers
// elsewhere.
func TestPublishResendsAfterReconnect(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "reconn-owner", 2*time.Second)
	waitHealthy(t, ctx, owner)
	owner.ackWait = time.Hour // a wait the test must not sit out
	a := answer("c-reconn", "m-reconn", owner.InstanceID())
	frames := testFrames(a, 1)
	lost := make(chan struct{})
	var once sync.Once
	drop := func(m *nats.Msg) bool {
		first := false
		once.Do(func() { first = true; close(lost) })
		return first // the first frame's acknowledgement, as the connection drops
	}
	owner.dropAck.Store(&drop)
	published := make(chan error, 1)
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	go func() { published <- owner.Publish(pctx, a, frames[0]) }()
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the frame was never acknowledged")
	}
	if err := owner.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatalf("the first frame after the reconnect: %v (sent again only after ackWait)", err)
	}
	for _, f := range frames[1:] {
		if err := publishRetrying(ctx, owner, a, f); err != nil {
			t.Fatal(err)
		}
	}
	if stored := storedFrames(t, ctx, owner, a.MessageID); len(stored) != len(frames) {
		t.Fatalf("the stream holds %d frames, want %d (each once)", len(stored), len(frames))
	}
}

// TestPublishResendAfterDuplicateWindow: a frame whose acknowledgement
// the publisher no longer has (the answer was silent longer than
// pubIdle, its acknowledgement subscription was dropped with the
// acknowledgement waiting in it) is sent again when the answer's next
// frame comes. Sent after the stream's duplicate window, that copy was
// stored a second time; the frame is now looked up on the answer's
// subject first, and found stored, not sent again.
func TestPublishResendAfterDuplicateWindow(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "dupwin-owner", 5*time.Second)
	waitHealthy(t, ctx, owner)
	owner.ackWait = 200 * time.Millisecond
	owner.pubs.mu.Lock()
	owner.pubs.idle = time.Nanosecond // every other answer is idle when one starts
	owner.pubs.mu.Unlock()
	js := testJetStream(t, c)
	stream := owner.res.Load().stream
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("shorten the duplicate window: %v", err)
	}

	silent := answer("c-dupwin", "m-dupwin", owner.InstanceID())
	frames := testFrames(silent, 4)
	publish(t, ctx, owner, silent, frames[:3]) // the third is in flight, its acknowledgement on its way

	// Wait out the duplicate window: a probe stored after the third frame
	// is taken again once the window forgot it, and the frame with it.
	probe := &nats.Msg{Subject: owner.answerSubject("m-dupwin-probe"), Header: nats.Header{}}
	probe.Header.Set(jetstream.MsgIDHeader, "dupwin-probe")
	for stored := 0; stored < 2; {
		ack, err := js.PublishMsg(ctx, probe)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if !ack.Duplicate {
			stored++
		}
		if stored < 2 {
			select {
			case <-ctx.Done():
				t.Fatal("the duplicate window never forgot the probe")
			case <-time.After(20 * time.Millisecond): // a poll, not a synchronisation
			}
		}
	}

	other := answer("c-dupwin-2", "m-dupwin-2", owner.InstanceID())
	publish(t, ctx, owner, other, testFrames(other, 1)[:1]) // drops the silent answer's subscription
	publish(t, ctx, owner, silent, frames[3:])
	stored := storedFrames(t, ctx, owner, silent.MessageID)
	if len(stored) != len(frames) {
		t.Fatalf("the stream holds %d frames, want %d (each once)", len(stored), len(frames))
	}
	for j, m := range stored {
		if _, n, err := decodeFrame(silent.MessageID, m.hdr, m.data); err != nil || n != uint64(j+1) {
			t.Fatalf("stored frame %d: number %d (%v)", j+1, n, err)
		}
	}
}

// TestPublishStaleCopyRefused: a copy of a frame that lands after the
// frame was stored, later than the stream's duplicate window (delayed
// past ackWait and the window, after the resend's lookup found nothing
// and sent it again), is refused: every frame expects the frame before
// it to be the last on its subject. Before, the copy was stored twice.
func TestPublishStaleCopyRefused(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "stale-owner", 5*time.Second)
	waitHealthy(t, ctx, owner)
	js := testJetStream(t, c)
	s, err := js.Stream(ctx, owner.res.Load().stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("shorten the duplicate window: %v", err)
	}
	a := answer("c-stale", "m-stale", owner.InstanceID())
	frames := testFrames(a, 2)
	publish(t, ctx, owner, a, frames)
	stored := storedFrames(t, ctx, owner, a.MessageID)
	if len(stored) != len(frames) {
		t.Fatalf("the stream holds %d frames, want %d", len(stored), len(frames))
	}
	// The second frame as it was sent: numbered 2, after the first.
	stale := &nats.Msg{Subject: owner.answerSubject(a.MessageID), Data: frames[1].Data,
		Header: frameHeader(frames[1], 2, stored[0].seq, frameID(a, frames[1]))}
	waitOutDuplicates(t, ctx, js, owner)
	if _, err := js.PublishMsg(ctx, stale); !wrongLastSeq(err) {
		t.Fatalf("a stale copy of a stored frame, after the duplicate window: %v, want refused", err)
	}
	if got := storedFrames(t, ctx, owner, a.MessageID); len(got) != len(frames) {
		t.Fatalf("the stream holds %d frames, want %d (each once)", len(got), len(frames))
	}
}

// waitOutDuplicates waits until the answer stream's duplicate window
// forgot what was stored before the call: a probe stored then is taken
// again.
func waitOutDuplicates(t *testing.T, ctx context.Context, js jetstream.JetStream, b *Bus) {
	t.Helper()
	probe := &nats.Msg{Subject: b.answerSubject("probe-" + b.InstanceID()), Header: nats.Header{}}
	probe.Header.Set(jetstream.MsgIDHeader, "probe-"+b.InstanceID())
	for stored := 0; stored < 2; {
		ack, err := js.PublishMsg(ctx, probe)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if !ack.Duplicate {
			stored++
		}
		if stored < 2 {
			select {
			case <-ctx.Done():
				t.Fatal("the duplicate window never forgot the probe")
			case <-time.After(20 * time.Millisecond): // a poll, not a synchronisation
			}
		}
	}
}

// TestPublishAfterForeignFrame: a frame refused because a frame that is
// not this answer's own was stored after the one it expects goes after
// it when that frame is numbered below it (a dead owner's frame landing
// after a claim, an instance of the version before), and is refused as
// taken over when it is numbered above it (another instance claimed the
// answer): the hub then finds the lock gone and stops.
func TestPublishAfterForeignFrame(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	for _, tc := range []struct {
		name     string
		foreignN uint64
		taken    bool
	}{
		{name: "straggler", foreignN: 2},
		{name: "claimant", foreignN: 3 + claimSkip, taken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			owner, _ := newBus(t, c, "foreign-"+tc.name, 5*time.Second)
			waitHealthy(t, ctx, owner)
			a := answer("c-foreign-"+tc.name, "m-foreign-"+tc.name, owner.InstanceID())
			frames := testFrames(a, 2) // message, two deltas, done
			publish(t, ctx, owner, a, frames[:2])
			owner.pubs.mu.Lock()
			pa := owner.pubs.answers[a.MessageID]
			owner.pubs.mu.Unlock()
			if _, err := owner.settle(ctx, pa); err != nil { // the delta is stored
				t.Fatal(err)
			}
			last := storedFrames(t, ctx, owner, a.MessageID)[1]
			foreign := &protocol.Frame{Type: protocol.TypeDelta, ConversationID: a.ConversationID, MessageID: a.MessageID,
				Seq: frames[1].Seq, Data: frames[1].Data}
			h := frameHeader(foreign, tc.foreignN, last.seq, "foreign-"+tc.name)
			h.Del(jetstream.ExpectedLastSubjSeqHeader)
			if _, err := testJetStream(t, c).PublishMsg(ctx, &nats.Msg{Subject: owner.answerSubject(a.MessageID),
				Data: foreign.Data, Header: h}); err != nil {
				t.Fatal(err)
			}
			err := owner.Publish(ctx, a, frames[2]) // pipelined: refused when the done settles it
			if err == nil {
				err = owner.Publish(ctx, a, frames[3])
			}
			if tc.taken {
				if !errors.Is(err, errTakenOver) || !errors.Is(err, hub.ErrBusUnavailable) {
					t.Fatalf("publish after a claimant's frame: %v, want taken over (unavailable)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("publish after a straggler: %v", err)
			}
			got := storedFrames(t, ctx, owner, a.MessageID)
			if len(got) != 5 {
				t.Fatalf("the stream holds %d frames, want 5", len(got))
			}
			if prev := got[3].hdr.Get(hdrPrev); prev != strconv.FormatUint(got[2].seq, 10) {
				t.Fatalf("the frame after the straggler names %s as the one before, want %d", prev, got[2].seq)
			}
		})
	}
}
