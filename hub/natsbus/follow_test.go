package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// TestFollowStartMany: 50 follows started at the same moment on another
// instance, of 50 answers that have begun, all get every frame without a
// JetStream consumer and without the silence check. A consumer per follow
// (created through the cluster's meta leader) made the slowest first
// frame 0.64 to 2.4 s under -race, against 60 to 150 ms without, and a
// follow whose consumer went silent waited about 2 s more; the test
// bounded the slowest at 500 ms, which a loaded machine (a 1 s stall of
// the whole process) overran with the follows as they are. It asserts the
// cause instead: no request about a consumer of the answers' stream
// reaches the peer's server, while the follows' reads of it do (so the
// watch is not blind), and the peer's silence check is an hour away (a
// follow that needed it would outlast the test's minute).
func TestFollowStartMany(t *testing.T) {
	t.Parallel()
	_, ctx, owner, peer := ownerAndPeer(t, "many", 60*time.Second)
	peer.idleAfter = time.Hour
	const answers = 50
	refs := make([]hub.AnswerRef, answers)
	all := make([][]*protocol.Frame, answers)
	for i := range refs {
		refs[i] = answer(fmt.Sprintf("c-many-%d", i), fmt.Sprintf("m-many-%d", i), owner.InstanceID())
		all[i] = testFrames(refs[i], 5)
		publish(t, ctx, owner, refs[i], all[i][:2])
	}
	api := watchStreamAPI(t, peer)
	firsts := make([]time.Duration, answers)
	results := make([]chan followResult, answers)
	start := make(chan struct{})
	var ready sync.WaitGroup
	for i, a := range refs {
		results[i] = make(chan followResult, 1)
		ready.Add(1)
		go func() {
			var got []*protocol.Frame
			ready.Done()
			<-start
			began := time.Now()
			err := peer.Follow(ctx, a, func(f *protocol.Frame) {
				if len(got) == 0 {
					firsts[i] = time.Since(began)
				}
				got = append(got, f)
			})
			results[i] <- followResult{got, err}
		}()
	}
	ready.Wait()
	close(start)
	var wg sync.WaitGroup
	for i, a := range refs {
		wg.Go(func() { publish(t, ctx, owner, a, all[i][2:]) })
	}
	wg.Wait()
	for i := range refs {
		r := <-results[i]
		if r.err != nil {
			t.Fatalf("follow %d: %v", i, r.err)
		}
		checkFrames(t, refs[i].MessageID, r.frames, all[i])
	}
	slices.Sort(firsts)
	t.Logf("50 follows started at once: first frame after p50 %v, max %v", firsts[answers/2], firsts[answers-1])
	consumers, reads := api.counts(t)
	if len(consumers) > 0 {
		t.Fatalf("the follows made %d requests about consumers of the answers' stream, the first %q", len(consumers), consumers[0])
	}
	if reads < answers {
		t.Fatalf("%d reads of the answers' stream seen from %d follows: the watch missed their requests", reads, answers)
	}
}

// streamAPI watches the JetStream API requests about the answer stream of
// a bus that reach the server it is connected to.
type streamAPI struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	stream string
}

// watchStreamAPI starts watching the requests of b's server (a connection
// of the test's own to it, closed when the test ends) about b's answer
// stream: its consumers and reads of its messages.
func watchStreamAPI(t *testing.T, b *Bus) *streamAPI {
	t.Helper()
	nc, err := nats.Connect(b.nc.ConnectedUrl(), nats.UserInfo("chatd", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := &streamAPI{nc: nc, stream: b.res.Load().stream}
	if w.sub, err = nc.SubscribeSync("$JS.API.>"); err != nil {
		t.Fatal(err)
	}
	if err := w.sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}
	return w
}

// counts returns the subjects of the requests seen so far about
// consumers of the stream, and how many read its messages (direct gets
// and gets through the leader).
func (w *streamAPI) counts(t *testing.T) (consumers []string, reads int) {
	t.Helper()
	// A request that reached the server before the flush's ping was
	// queued to this connection before its pong.
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		if n, _, err := w.sub.Pending(); err != nil || n == 0 {
			return consumers, reads
		}
		m, err := w.sub.NextMsg(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tokens := strings.Split(m.Subject, ".")
		switch {
		case !slices.Contains(tokens[3:], w.stream):
		case tokens[2] == "CONSUMER":
			consumers = append(consumers, m.Subject)
		case strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET.") || strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET."):
			reads++
		}
	}
}

// TestFollowRecovers: frames the instance's live subscription misses are
// read from JetStream: a skipped number is filled at once, a lost last
// frame is found once the follow has heard nothing for a while, and after
// a reconnect everything published meanwhile is read.
func TestFollowRecovers(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "lost-owner", 2*time.Second)
	waitHealthy(t, ctx, owner)
	cases := []struct {
		name string
		// lost says which frames (by number, of 12) the follower's live
		// subscription loses; idle is its silence check.
		lost      func(n int) bool
		idle      time.Duration
		reconnect bool
	}{
		{name: "gap", lost: func(n int) bool { return n == 3 || n == 6 || n == 7 }, idle: time.Hour},
		{name: "lost done", lost: func(n int) bool { return n == 12 }, idle: 100 * time.Millisecond},
		{name: "all lost, silence", lost: func(int) bool { return true }, idle: 100 * time.Millisecond},
		{name: "all lost, reconnect", lost: func(int) bool { return true }, idle: time.Hour, reconnect: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peer, _ := newBus(t, c, fmt.Sprintf("lost-peer-%d", i), 2*time.Second)
			waitHealthy(t, ctx, peer)
			peer.idleAfter = tc.idle
			drop := func(m *nats.Msg) bool {
				var n int
				_, _ = fmt.Sscan(m.Header.Get(hdrN), &n)
				return tc.lost(n)
			}
			peer.live.drop.Store(&drop)
			a := answer("c-lost-"+tc.name, fmt.Sprintf("m-lost-%d", i), owner.InstanceID())
			frames := testFrames(a, 10)
			publish(t, ctx, owner, a, frames[:1])
			res, first := followFirst(ctx, peer, a)
			<-first // read from JetStream: the rest comes live, or is lost
			publish(t, ctx, owner, a, frames[1:])
			if tc.reconnect {
				peer.live.drop.Store(nil)
				if err := peer.nc.ForceReconnect(); err != nil {
					t.Fatal(err)
				}
			}
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkFrames(t, tc.name, r.frames, frames)
		})
	}
}

// TestClaimContinuesNumbering: the frames an instance publishes for an
// answer it claimed from a dead one continue that answer's numbering, so
// followers that had its first frames and followers that come later both
// get every frame up to the claimer's done.
func TestClaimContinuesNumbering(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "claim-owner", 2*time.Second)
	claimer, recClaimer := newBus(t, c, "claim-claimer", 2*time.Second)
	peer, _ := newBus(t, c, "claim-peer", 2*time.Second)
	waitHealthy(t, ctx, owner, claimer, peer)
	peer.idleAfter = time.Hour // only the numbering can end the follows
	a := answer("c-claim", "m-claim", owner.InstanceID())
	if _, err := owner.Acquire(ctx, a); err != nil {
		t.Fatal(err)
	}
	frames := testFrames(a, 6)
	early := followAsync(ctx, peer, a)
	publish(t, ctx, owner, a, frames[:5])
	// A delta's Publish returns before its acknowledgement (pipeline.go):
	// the owner dies here with every frame stored, as one that crashed a
	// lease TTL before the claim would have.
	owner.pubs.mu.Lock()
	pa := owner.pubs.answers[a.MessageID]
	owner.pubs.mu.Unlock()
	if _, err := owner.settle(ctx, pa); err != nil {
		t.Fatal(err)
	}
	owner.Kill()
	// As the hub does, the claimer claims once told the owner's lease
	// expired (Claim refuses while it is live); a claim JetStream could not answer (a leader
	// elected on a loaded machine) is tried again; a retry of a claim
	// that was applied wins too (Bus.Claim).
	recClaimer.waitFor(t, ctx, "orphan report", func() bool { return len(recClaimer.orphans) > 0 })
	var mine hub.AnswerRef
	var err error
	for attempt := 0; ; attempt++ {
		if mine, err = claimer.Claim(ctx, a); !errors.Is(err, hub.ErrBusUnavailable) || ctx.Err() != nil {
			break
		}
		time.Sleep(backoff(attempt))
	}
	if err != nil {
		t.Fatal(err)
	}
	end := []*protocol.Frame{
		{Type: hub.FrameStored, ConversationID: a.ConversationID, MessageID: a.MessageID, Seq: 40, Data: []byte(`{"text":"x"}`)},
		{Type: protocol.TypeDone, ConversationID: a.ConversationID, MessageID: a.MessageID, Seq: 40, Data: []byte(`{"type":"done"}`)},
	}
	publish(t, ctx, claimer, mine, end)
	want := append(slices.Clone(frames[:5]), end...)
	for name, res := range map[string]chan followResult{"early": early, "late": followAsync(ctx, peer, a)} {
		r := <-res
		if r.err != nil {
			t.Fatalf("%s follower: %v", name, r.err)
		}
		checkFrames(t, name, r.frames, want)
	}
}

// TestFollowReceivesItsAnswerOnly: an instance receives the frames of the
// answers its follows follow, not every answer's: while another instance
// publishes 200 frames of an answer nobody here follows, this instance's
// connection receives a handful of messages (lease and lock watches), and
// the answer it follows still arrives whole. With one subscription to
// every answer's frames it received all 200.
func TestFollowReceivesItsAnswerOnly(t *testing.T) {
	t.Parallel()
	_, ctx, owner, peer := ownerAndPeer(t, "only", 60*time.Second)
	followed := answer("c-only-followed", "m-only-followed", owner.InstanceID())
	other := answer("c-only-other", "m-only-other", owner.InstanceID())
	frames := testFrames(followed, 10)
	publish(t, ctx, owner, followed, frames[:1])
	res, first := followFirst(ctx, peer, followed)
	<-first
	const unfollowed = 200
	before := peer.nc.Stats().InMsgs
	publish(t, ctx, owner, other, testFrames(other, unfollowed-2))
	if got := peer.nc.Stats().InMsgs - before; got >= unfollowed/2 {
		t.Fatalf("the instance received %d messages while %d frames of an answer it does not follow were published", got, unfollowed)
	}
	publish(t, ctx, owner, followed, frames[1:])
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkFrames(t, "followed", r.frames, frames)
}

// TestMixedVersions: during a rolling upgrade instances of the version
// before (one subscription to every answer's frames, chatd.answer.*) and
// of this one (a subscription per followed answer) share a cluster. The
// frames on the wire are the same: an old instance's subscription
// receives each frame this version publishes, live, with the headers it
// reads; and this version follows an answer an old instance publishes
// (the same subject and headers, each frame acknowledged and numbered
// after the previous one's stream sequence).
func TestMixedVersions(t *testing.T) {
	t.Parallel()
	c, ctx, owner, peer := ownerAndPeer(t, "mixed", 60*time.Second)

	t.Run("old instance receives", func(t *testing.T) {
		old, err := nats.Connect(c.URLs()[1], nats.UserInfo("chatd", "pw"))
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		ch := make(chan *nats.Msg, 64)
		sub, err := old.ChanSubscribe(owner.opts.Prefix+".answer.*", ch)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := old.Flush(); err != nil {
			t.Fatal(err)
		}
		a := answer("c-mixed-new", "m-mixed-new", owner.InstanceID())
		frames := testFrames(a, 5)
		// The old instance's interest reaches the owner's NATS server over
		// the cluster's routes: publish until the first frame comes through.
		publish(t, ctx, owner, a, frames[:1])
		var got []*protocol.Frame
		for len(got) < len(frames) {
			select {
			case m := <-ch:
				f, n, err := decodeFrame(a.MessageID, m.Header, m.Data)
				if err != nil {
					t.Fatal(err)
				}
				if int(n) == len(got)+1 {
					got = append(got, f)
					if n == 1 {
						publish(t, ctx, owner, a, frames[1:])
					}
				}
			case <-time.After(100 * time.Millisecond):
				if len(got) == 0 { // not through yet: the first frame again (same number and id)
					publish(t, ctx, owner, a, frames[:1])
				}
			case <-ctx.Done():
				t.Fatalf("the old instance received %d of %d frames", len(got), len(frames))
			}
		}
		checkFrames(t, "old instance", got, frames)
	})

	t.Run("old instance publishes", func(t *testing.T) {
		a := answer("c-mixed-old", "m-mixed-old", "old-instance")
		frames := testFrames(a, 8)
		res := followAsync(ctx, peer, a)
		var prev uint64
		for i, f := range frames {
			h := nats.Header{}
			h.Set(hdrType, f.Type)
			h.Set(hdrMsg, f.MessageID)
			h.Set(hdrConv, f.ConversationID)
			h.Set(hdrSeq, strconv.FormatInt(f.Seq, 10))
			h.Set(hdrN, strconv.Itoa(i+1))
			h.Set(hdrPrev, strconv.FormatUint(prev, 10))
			h.Set(jetstream.MsgIDHeader, frameID(a, f))
			seq, err := owner.publishAcked(ctx, &nats.Msg{Subject: owner.answerSubject(a.MessageID), Data: f.Data, Header: h})
			if err != nil {
				t.Fatal(err)
			}
			prev = seq
		}
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkFrames(t, "this version", r.frames, frames)
	})
}

// TestFollowAfterOldestDiscarded: the stream keeps at most five frames of
// an answer (MaxMsgsPerAnswer), so a follow that starts after more were
// published reads from the first frame kept, then the live ones, in order,
// each once, without an error: what came before is the hub's to rebuild
// (from the store's checkpoint; hub's TestClusterFollowAfterFramesDropped).
// Each later frame is published once the follow has the one before: a
// follow more than five frames behind would find the ones it missed
// discarded too (a gap the hub's mirror reports).
func TestFollowAfterOldestDiscarded(t *testing.T) {
	t.Parallel()
	const kept = 5
	ctx, owner, peer := smallStreamPair(t, "discard", kept)
	a := answer("c-discard", "m-discard", owner.InstanceID())
	frames := testFrames(a, 20) // the message frame, 20 deltas, the done
	publish(t, ctx, owner, a, frames[:12])
	r := startFollow(t, ctx, peer, a, len(frames), nil)
	// The last of the first twelve may still be on its way to the stream
	// (a delta's publish returns once sent) when the follow reads it: the
	// kept ones are then frames 6 to 10, and 11 comes live.
	for f := r.next(); f.Seq != frames[11].Seq; f = r.next() {
	}
	for _, f := range frames[12:] {
		publish(t, ctx, owner, a, []*protocol.Frame{f})
		r.next()
	}
	r.end()
	frs := r.frames
	start := len(frames) - len(frs)
	if start < 12-kept-1 || start > 12-kept {
		for i, g := range frs {
			t.Logf("got frame %d: %s seq %d %s", i, g.Type, g.Seq, g.Data)
		}
		t.Fatalf("late follower got the last %d frames, want from frame %d or %d on", len(frs), 12-kept-1, 12-kept)
	}
	checkFrames(t, "late follower", frs, frames[start:])
}

// TestFollowAcrossDiscardedFrames: a follow that fell behind while the
// stream discarded frames it had not read (its limits reached), their live
// copies lost too, reads the ones kept and goes on, in order, each once,
// without an error: the hole is the hub's to fill (from the store's
// checkpoint; hub's TestClusterFollowAcrossDroppedFrames).
func TestFollowAcrossDiscardedFrames(t *testing.T) {
	t.Parallel()
	const kept = 3
	ctx, owner, peer := smallStreamPair(t, "hole", kept)
	a := answer("c-hole", "m-hole", owner.InstanceID())
	frames := testFrames(a, 12) // numbered 1 (the message frame) to 14 (the done)
	publish(t, ctx, owner, a, frames[:1])
	drop := func(m *nats.Msg) bool {
		var n int
		_, _ = fmt.Sscan(m.Header.Get(hdrN), &n)
		return n >= 2 && n <= 9
	}
	peer.live.drop.Store(&drop)
	behind := make(chan struct{})
	r := startFollow(t, ctx, peer, a, len(frames), func(f *protocol.Frame) {
		if f.Type == protocol.TypeMessage {
			<-behind
		}
	})
	if f := r.next(); f.Type != protocol.TypeMessage {
		t.Fatalf("first frame %s", f.Type)
	}
	// While the follow is held, frames 2 to 9 are published (their live
	// copies lost) and stored: the stream keeps 7 to 9 of them. Frame 9
	// is not text, so its publish returns once it is stored (text frames
	// are acknowledged when the next one is sent).
	frames[8] = &protocol.Frame{Type: protocol.TypeConversation, ConversationID: a.ConversationID, MessageID: a.MessageID,
		Seq: frames[8].Seq, Data: []byte(`{"type":"conversation"}`)}
	publish(t, ctx, owner, a, frames[1:9])
	close(behind)
	for r.next().Type != protocol.TypeConversation {
	}
	// Each later frame is published once the follow has the one before:
	// three frames kept would not outlast a follow further behind.
	for _, f := range frames[9:] {
		publish(t, ctx, owner, a, []*protocol.Frame{f})
		r.next()
	}
	r.end()
	rest := r.frames[1:]
	checkFrames(t, "after the hole", rest, frames[9-kept:])
}

// smallStreamPair starts a one-node NATS server and two buses, name-owner
// and name-peer, whose answer stream keeps kept frames per answer; ctx
// bounds the test.
func smallStreamPair(t *testing.T, name string, kept int64) (ctx context.Context, owner, peer *Bus) {
	t.Helper()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	limits := StreamLimits{MaxMsgsPerAnswer: kept}
	owner, _ = newBusWith(t, c, Options{InstanceID: name + "-owner", LeaseTTL: 2 * time.Second, Stream: limits})
	peer, _ = newBusWith(t, c, Options{InstanceID: name + "-peer", LeaseTTL: 2 * time.Second, Stream: limits})
	waitHealthy(t, ctx, owner, peer)
	return ctx, owner, peer
}

// followed is a follow whose frames a test reads one at a time.
type followed struct {
	t      *testing.T
	ctx    context.Context
	got    chan *protocol.Frame
	ended  chan error
	frames []*protocol.Frame // read so far
}

// startFollow follows a on b; each frame is queued for next, then handed
// to hold (nil: none), which may block the follow.
func startFollow(t *testing.T, ctx context.Context, b *Bus, a hub.AnswerRef, frames int, hold func(*protocol.Frame)) *followed {
	r := &followed{t: t, ctx: ctx, got: make(chan *protocol.Frame, frames), ended: make(chan error, 1)}
	go func() {
		r.ended <- b.Follow(ctx, a, func(f *protocol.Frame) {
			r.got <- f
			if hold != nil {
				hold(f)
			}
		})
	}()
	return r
}

// next returns the follow's next frame; the test fails when the follow
// ends, or ctx does, before one comes.
func (r *followed) next() *protocol.Frame {
	r.t.Helper()
	select {
	case f := <-r.got:
		r.frames = append(r.frames, f)
		return f
	case err := <-r.ended:
		select {
		case f := <-r.got: // delivered before it ended
			r.ended <- err
			r.frames = append(r.frames, f)
			return f
		default:
		}
		r.t.Fatalf("the follow ended after %d frames: %v", len(r.frames), err)
	case <-r.ctx.Done():
		r.t.Fatalf("the follow got %d frames, then nothing", len(r.frames))
	}
	return nil
}

// end waits for the follow to end and fails the test on its error.
func (r *followed) end() {
	r.t.Helper()
	if err := <-r.ended; err != nil {
		r.t.Fatalf("follow: %v", err)
	}
}
