package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// TestLeaseExpiryTakeover: while an instance renews its lease nobody
// reports its locks; once it dies (no shutdown path), every live instance
// is told within about a lease TTL, and exactly one Claim wins.
func TestLeaseExpiryTakeover(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// 2 s (it was 1 s): the bound of three TTLs then leaves the report
	// over one TTL room for a stall of the loaded machine's 1 to 2 s.
	const ttl = 2 * time.Second
	a, _ := newBus(t, c, "lease-a", ttl)
	b, recB := newBus(t, c, "lease-b", ttl)
	cc, recC := newBus(t, c, "lease-c", ttl)
	waitHealthy(t, ctx, a, b, cc)
	ref := answer("conv-lease", "msg-lease", a.InstanceID())
	if _, err := a.Acquire(ctx, ref); err != nil {
		t.Fatal(err)
	}
	waitJudging(t, ctx, b)
	waitJudging(t, ctx, cc)
	// Both judge leases and see the lock (it was taken before they judged):
	// a live owner's lock is never reported.
	for _, r := range []*recorder{recB, recC} {
		r.mu.Lock()
		n := len(r.orphans)
		r.mu.Unlock()
		if n != 0 {
			t.Fatalf("a live instance's lock was reported orphaned %d times", n)
		}
	}

	killed := time.Now()
	a.Kill()
	for _, r := range []*recorder{recB, recC} {
		r.waitFor(t, ctx, "orphan report", func() bool { return len(r.orphans) > 0 })
		r.mu.Lock()
		if r.orphans[0] != ref {
			t.Fatalf("orphan %+v, want %+v", r.orphans[0], ref)
		}
		r.mu.Unlock()
	}
	if took := time.Since(killed); took > 3*ttl {
		t.Fatalf("orphan reported %s after the kill, want within about one TTL (%s)", took, ttl)
	} else {
		t.Logf("orphan reported %s after the kill (TTL %s)", took, ttl)
	}
	mine := claimRace(t, ctx, []*Bus{b, cc}, ref)
	winner := b
	if mine.Instance == cc.InstanceID() {
		winner = cc
	}
	if err := winner.Release(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Running(ctx, ref.ConversationID); ok {
		t.Fatal("the claimed lock was not released")
	}
}

// TestWatchersLostRecover: when the JetStream consumers behind the
// buckets' watchers vanish (their NATS node died; here they are deleted,
// which the server does not tell the client either), an instance still
// learns of new locks and of a dead owner within about a lease TTL: the
// lost watchers are noticed and replaced, not waited for until the
// client's own idle-heartbeat check (10 to 20 seconds).
func TestWatchersLostRecover(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ttl = time.Second
	a, _ := newBus(t, c, "lost-a", ttl)
	b, recB := newBus(t, c, "lost-b", ttl)
	waitHealthy(t, ctx, a, b)
	waitJudging(t, ctx, b)

	js := testJetStream(t, c)
	for _, bucket := range []string{"locks", "leases"} {
		s, err := js.Stream(ctx, "KV_"+b.name(bucket))
		if err != nil {
			t.Fatal(err)
		}
		names := s.ConsumerNames(ctx)
		n := 0
		for name := range names.Name() {
			if err := s.DeleteConsumer(ctx, name); err != nil {
				t.Fatalf("delete consumer %s of %s: %v", name, bucket, err)
			}
			n++
		}
		if names.Err() != nil || n < 2 {
			t.Fatalf("bucket %s: deleted %d watchers' consumers (%v), want both instances'", bucket, n, names.Err())
		}
	}

	ref := answer("conv-lost", "msg-lost", a.InstanceID())
	if _, err := a.Acquire(ctx, ref); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	a.Kill()
	recB.waitFor(t, ctx, "orphan report", func() bool { return len(recB.orphans) > 0 })
	recB.mu.Lock()
	got := recB.orphans[0]
	recB.mu.Unlock()
	if got != ref {
		t.Fatalf("orphan %+v, want %+v", got, ref)
	}
	// Six TTLs (it was four, which a 2 s stall of the loaded machine could
	// overrun) stay well short of the client's idle-heartbeat check.
	if took := time.Since(killed); took > 6*ttl {
		t.Fatalf("orphan reported %s after the kill with the watchers lost, want within a few TTLs (%s)", took, ttl)
	} else {
		t.Logf("orphan reported %s after the kill with the watchers lost (TTL %s)", took, ttl)
	}
}

// TestNodeLossMidAnswer: killing each NATS node in turn while an answer is
// published and followed changes nothing a follower sees: every frame, in
// order, once; and the leases stream's leader moving finds no step of its
// clock (all nodes share this host's). An acknowledgement lost with a
// node is waited for 200ms, not the real 5s (ackWait), before the frame
// is looked up and sent again, and each Publish call is bounded by a
// second, not the hub's 5s (busTimeout), when a round trip goes
// unanswered while a stream elects its leader: the test checks what the
// follower gets, not those waits (27s with them, most of it waited out).
// The follower looks for a frame it missed (a node lost with it) after
// 200ms of silence, not a second.
func TestNodeLossMidAnswer(t *testing.T) {
	t.Parallel()
	c, ctx, owner, peer := ownerAndPeer(t, "loss", 60*time.Second)
	owner.ackWait = 200 * time.Millisecond
	peer.idleAfter = 200 * time.Millisecond
	a := answer("conv-loss", "msg-loss", owner.InstanceID())
	frames := testFrames(a, 90)
	res := followAsync(ctx, peer, a)
	for i := range 3 {
		publishEach(t, ctx, owner, a, frames[i*30:(i+1)*30])
		c.Kill(i)
		publishEach(t, ctx, owner, a, frames[i*30+30:i*30+31])
		c.Restart(i)
	}
	publishEach(t, ctx, owner, a, frames[91:])
	r := <-res
	if r.err != nil {
		t.Fatalf("follow across node losses: %v", r.err)
	}
	checkFrames(t, "follower", r.frames, frames)
	// The leaders moved between servers of one clock: no step was found
	// in the leases stream's time (which would pause judging).
	for _, b := range []*Bus{owner, peer} {
		if n := b.LeaseClockSteps(); n != 0 {
			t.Errorf("%s found the leases stream's clock stepped %d times, with one clock", b.InstanceID(), n)
		}
	}
}

// publishEach is publish with each Publish call bounded by a second, as
// the hub bounds each (by busTimeout, 5s): a call that a lost node leaves
// unanswered fails sooner and is made again, its frame still in flight.
func publishEach(t *testing.T, ctx context.Context, b *Bus, a hub.AnswerRef, frames []*protocol.Frame) {
	t.Helper()
	for _, f := range frames {
		for {
			callCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := b.Publish(callCtx, a, f)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish: %v", err)
			}
			wait(ctx, 20*time.Millisecond) // retry pace, as the hub's publisher
		}
	}
}

// TestOutageAndRecovery: with every NATS node down the bus reports itself
// down, refuses locks (never runs an answer twice), ends follows with
// ErrBusUnavailable; when NATS is back it recovers without a restart, and
// instances cut off together do not declare each other dead.
func TestOutageAndRecovery(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ttl = time.Second
	a, recA := newBus(t, c, "out-a", ttl)
	b, recB := newBus(t, c, "out-b", ttl)
	waitHealthy(t, ctx, a, b)
	held := answer("conv-out", "msg-out", a.InstanceID())
	if _, err := a.Acquire(ctx, held); err != nil {
		t.Fatal(err)
	}
	waitJudging(t, ctx, b)
	follow := followAsync(ctx, b, held)

	c.StopAll()
	for _, bus := range []*Bus{a, b} {
		waitUnhealthy(t, ctx, bus)
	}
	if err := b.Health(ctx); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Fatalf("health while NATS is down: %v", err)
	}
	if r := <-follow; !errors.Is(r.err, hub.ErrBusUnavailable) {
		t.Fatalf("follow while NATS is down ended with %v, want ErrBusUnavailable", r.err)
	}
	if _, err := b.Acquire(ctx, answer("conv-other", "m", b.InstanceID())); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Fatalf("acquire while NATS is down: %v, want ErrBusUnavailable", err)
	}
	if err := a.Publish(ctx, held, testFrames(held, 1)[0]); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Fatalf("publish while NATS is down: %v", err)
	}

	c.StartAll()
	waitHealthy(t, ctx, a, b)
	waitJudging(t, ctx, b)
	waitJudging(t, ctx, a)
	// Both judged a full TTL after the outage: nobody was declared dead.
	for _, r := range []*recorder{recA, recB} {
		r.mu.Lock()
		n := len(r.orphans)
		r.mu.Unlock()
		if n != 0 {
			t.Fatalf("an instance cut off with the others was declared dead (%d reports)", n)
		}
	}
	// Each stream elects its leader again after the restart, in its own
	// time: a call may find none for a moment and be refused as
	// unavailable (the hub reports or retries it), never answered wrongly.
	if err := untilAvailable(ctx, func() error {
		_, err := b.Acquire(ctx, answer(held.ConversationID, "m2", b.InstanceID()))
		return err
	}); !errors.Is(err, hub.ErrLockHeld) {
		t.Fatalf("the lock held across the outage: %v, want ErrLockHeld", err)
	}
	publish(t, ctx, a, held, testFrames(held, 3))
	r := <-followAsync(ctx, b, held)
	if r.err != nil || len(r.frames) != 5 {
		t.Fatalf("follow after recovery: %d frames, %v", len(r.frames), r.err)
	}
	if err := untilAvailable(ctx, func() error { return b.Control(ctx, held, hub.ControlCancel) }); err != nil {
		t.Fatalf("control after recovery: %v", err)
	}
}

// untilAvailable calls fn again, at the hub publisher's retry pace, while
// it fails with hub.ErrBusUnavailable and ctx lasts; it returns fn's last
// error.
func untilAvailable(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, hub.ErrBusUnavailable) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitUnhealthy(t *testing.T, ctx context.Context, b *Bus) {
	t.Helper()
	for b.Health(ctx) == nil {
		select {
		case <-ctx.Done():
			t.Fatalf("bus %s stays healthy with NATS down", b.id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSharedLimits: connections and sends are limited across instances
// under parallel requests, and a dead instance's connections stop counting.
func TestSharedLimits(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buses := healthyBuses(t, ctx, c, "lim", 3)

	const maxConns = 5
	granted := make([]atomic.Int32, len(buses))
	parallel(t, buses, 4, func(i int, l *Limits) error {
		ok, err := l.AcquireConn(ctx, "user-c", maxConns)
		if ok {
			granted[i].Add(1)
		}
		return err
	})
	total := 0
	for i := range granted {
		total += int(granted[i].Load())
	}
	if total != maxConns {
		t.Fatalf("%d connections granted across the cluster, want %d", total, maxConns)
	}
	var sends atomic.Int32
	parallel(t, buses, 4, func(_ int, l *Limits) error {
		ok, err := l.TakeSend(ctx, "user-s", 8) // burst of 2
		if ok {
			sends.Add(1)
		}
		return err
	})
	if sends.Load() != 2 {
		t.Fatalf("%d sends allowed at once across the cluster, want the burst of 2", sends.Load())
	}
	var convs atomic.Int32
	parallel(t, buses, 4, func(_ int, l *Limits) error {
		wait, ok, err := l.TakeBudget(ctx, "conversations", "user-s", 3) // a burst of 3
		if ok {
			convs.Add(1)
		} else if err == nil && (wait <= 0 || wait > 20*time.Second) {
			t.Errorf("a refused conversation waits %v, want up to the 20s of one token", wait)
		}
		return err
	})
	if convs.Load() != 3 {
		t.Fatalf("%d new conversations allowed at once across the cluster, want the burst of 3", convs.Load())
	}

	// The instance holding connections dies: once its lease expires, its
	// connections no longer count.
	victim := 0
	for i := range granted {
		if granted[i].Load() > 0 {
			victim = i
			break
		}
	}
	survivor := buses[(victim+1)%3]
	waitJudging(t, ctx, survivor)
	buses[victim].Kill()
	for {
		ok, err := survivor.Limits().AcquireConn(ctx, "user-c", maxConns)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("a dead instance's connections stay counted")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parallel runs fn n times on each bus's Limits at once.
func parallel(t *testing.T, buses []*Bus, n int, fn func(i int, l *Limits) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range buses {
		for range n {
			wg.Go(func() {
				<-start
				if err := fn(i, b.Limits()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
}

// TestConnCountsAfterOutage: connections opened and closed while NATS is
// down (the transports admit them: an outage must not lock users out)
// are counted right once NATS is back, without a restart: an instance
// writes its own count from the connections it holds, not as +1 and -1
// that a failed update loses.
func TestConnCountsAfterOutage(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ttl = time.Second
	a, _ := newBus(t, c, "count-a", ttl)
	b, _ := newBus(t, c, "count-b", ttl)
	waitHealthy(t, ctx, a, b)
	const user, maxConns = "user-outage", 3
	la, lb := a.Limits(), b.Limits()
	for range 2 {
		if ok, err := la.AcquireConn(ctx, user, maxConns); !ok || err != nil {
			t.Fatalf("acquire before the outage: %v %v", ok, err)
		}
	}

	c.StopAll()
	waitUnhealthy(t, ctx, a)
	// Both connections close, one more opens (admitted by the caller).
	for range 2 {
		if err := la.ReleaseConn(ctx, user); !errors.Is(err, hub.ErrBusUnavailable) {
			t.Fatalf("release while NATS is down: %v", err)
		}
	}
	if _, err := la.AcquireConn(ctx, user, maxConns); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Fatalf("acquire while NATS is down: %v", err)
	}
	if n := a.LimitFailures(); n != 3 {
		t.Fatalf("%d limit failures counted, want the outage's 3", n)
	}

	c.StartAll()
	waitHealthy(t, ctx, a, b)
	// a holds one connection: its entry says so once repaired, and the
	// cluster admits exactly two more.
	waitConnCounts(t, ctx, a, user, `{"count-a":1}`)
	for i := range maxConns - 1 {
		if err := untilAvailable(ctx, func() error {
			ok, err := lb.AcquireConn(ctx, user, maxConns)
			if err == nil && !ok {
				t.Fatalf("acquire %d after the outage refused", i)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := lb.AcquireConn(ctx, user, maxConns); ok || err != nil {
		t.Fatalf("a connection past the limit after the outage: %v %v", ok, err)
	}
	// a's last connection closes: one more fits, and no more.
	if err := la.ReleaseConn(ctx, user); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := lb.AcquireConn(ctx, user, maxConns); ok != want || err != nil {
			t.Fatalf("acquire %d after a's release: %v %v, want %v", i, ok, err, want)
		}
	}
}

// waitConnCounts waits until the user's key in chatd_conns reads want.
func waitConnCounts(t *testing.T, ctx context.Context, b *Bus, user, want string) {
	t.Helper()
	got := ""
	for got != want {
		if e, err := b.res.Load().conns.Get(ctx, token(user)); err == nil {
			got = string(e.Value())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("connection counts of %s: %s, want %s", user, got, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestConnCountsUnderChurn: connections opened and closed in parallel on
// three instances never exceed the limit together, and once all are
// closed the user's key is gone (every instance wrote its count back to
// nothing).
func TestConnCountsUnderChurn(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	buses := healthyBuses(t, ctx, c, "churn", 3)
	const user, maxConns, rounds = "user-churn", 3, 8
	var open, peak, granted atomic.Int32
	parallel(t, buses, 3, func(_ int, l *Limits) error {
		for range rounds {
			ok, err := l.AcquireConn(ctx, user, maxConns)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			granted.Add(1)
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			open.Add(-1)
			if err := l.ReleaseConn(ctx, user); err != nil {
				return err
			}
		}
		return nil
	})
	if p := peak.Load(); p > maxConns {
		t.Fatalf("%d connections open at once across the cluster, limit %d", p, maxConns)
	}
	if granted.Load() == 0 {
		t.Fatal("no connection was ever admitted")
	}
	if _, err := buses[0].res.Load().conns.Get(ctx, token(user)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after every connection closed the user's counts are still there: %v", err)
	}
}

// TestClaimChecksOwnerLease: Claim takes an answer over only while its
// owner's lease is expired or gone, read when the claim is made: not
// while the owner renews it, and not once it renewed it after the orphan
// was reported (an owner cut off, or slow, that came back keeps its
// answer). Claim was a plain compare-and-swap of the lock: it won in both.
func TestClaimChecksOwnerLease(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ttl = time.Second
	owner, _ := newBus(t, c, "leasecheck-owner", ttl)
	claimer, rec := newBus(t, c, "leasecheck-claimer", ttl)
	waitHealthy(t, ctx, owner, claimer)
	ref := answer("conv-leasecheck", "msg-leasecheck", owner.InstanceID())
	if _, err := owner.Acquire(ctx, ref); err != nil {
		t.Fatal(err)
	}
	leases, err := testJetStream(t, c).KeyValue(ctx, claimer.name("leases"))
	if err != nil {
		t.Fatal(err)
	}
	renew := func() {
		val, _ := json.Marshal(lease{Instance: owner.InstanceID(), Renewed: time.Now().UTC(), TTLMillis: ttl.Milliseconds()})
		if _, err := leases.Put(ctx, token(owner.InstanceID()), val); err != nil {
			t.Fatalf("renew the owner's lease: %v", err)
		}
	}
	steps := []struct {
		name    string
		before  func()
		wantErr error // nil: the claim wins
	}{
		{"the owner renews its lease", func() {}, hub.ErrLockHeld},
		{"renewed after the orphan report", func() {
			owner.Kill() // no shutdown: its lease stays until it expires
			rec.waitFor(t, ctx, "orphan report", func() bool { return len(rec.orphans) > 0 })
			renew() // the owner is back before the claim
		}, hub.ErrLockHeld},
		{"the lease is gone", func() {
			if err := leases.Delete(ctx, token(owner.InstanceID())); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, st := range steps {
		st.before()
		mine, err := claimer.Claim(ctx, ref)
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: claim %+v, %v, want %v", st.name, mine, err, st.wantErr)
			}
			if got, ok, _ := claimer.Running(ctx, ref.ConversationID); !ok || got != ref {
				t.Fatalf("%s: the lock names %+v (%v), want the owner's %+v", st.name, got, ok, ref)
			}
			continue
		}
		if err != nil || mine.Instance != claimer.InstanceID() {
			t.Fatalf("%s: claim %+v, %v, want it won", st.name, mine, err)
		}
	}
}

// TestRecoveryAfterJetStreamLost: NATS comes back from an outage without
// its JetStream data (its servers started again without their store: the
// buckets and streams are gone). The bus sets them up again by itself and
// is usable again without a restart: its lease renewed, locks taken,
// frames published and followed, other instances judged. Before, every
// renewal failed with no responders for as long as the process ran, and
// /readyz answered 503.
func TestRecoveryAfterJetStreamLost(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := newBus(t, c, "lost-a", time.Second)
	b, recB := newBus(t, c, "lost-b", time.Second)
	waitHealthy(t, ctx, a, b)

	c.StopAll()
	waitUnhealthy(t, ctx, a)
	c.Wipe()
	c.StartAll()
	waitHealthy(t, ctx, a, b)
	held := answer("conv-lost", "msg-lost", a.InstanceID())
	if err := untilAvailable(ctx, func() error { _, err := a.Acquire(ctx, held); return err }); err != nil {
		t.Fatalf("acquire after JetStream came back empty: %v", err)
	}
	follow := followAsync(ctx, b, held)
	publish(t, ctx, a, held, testFrames(held, 2))
	if r := <-follow; r.err != nil || len(r.frames) != 4 {
		t.Fatalf("follow after JetStream came back empty: %d frames, %v", len(r.frames), r.err)
	}
	// b still mirrors the locks: a's dies with its lease and b is told.
	waitJudging(t, ctx, b)
	a.Kill()
	recB.waitFor(t, ctx, "the orphaned answer reported", func() bool { return len(recB.orphans) > 0 })
}

// TestRecoveryAfterLeasesBucketLostWhenRenewalsTimeOut: the leases bucket
// gone (NATS lost its data) is set up again even when the renewals that
// find it gone time out instead of being told that no stream answers. A
// renewal is bounded by half the lease TTL, and nats.go waits twice 250 ms
// before it reports no stream, so with a lease TTL of about a second (the
// least chatd allows) renewals end as timeouts, and the bus was set up
// again only when a timer race let a renewal see the answer. Here a
// subscriber to the bucket's subjects that never answers makes every
// renewal time out.
func TestRecoveryAfterLeasesBucketLostWhenRenewalsTimeOut(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, _ := newBus(t, c, "relost", time.Second)
	waitHealthy(t, ctx, b)
	nc, err := nats.Connect(c.URLs()[0], nats.UserInfo("chatd", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("$KV.chatd_leases.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.js.DeleteStream(ctx, "KV_chatd_leases"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for { // a renewal lands again: only in a bucket set up again
		b.lease.mu.Lock()
		renewed := b.lease.renewedAt.After(deleted)
		b.lease.mu.Unlock()
		if renewed {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the lease is not renewed again after its bucket was lost (health: %v)", b.Health(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := b.js.Stream(ctx, "KV_chatd_leases"); err != nil {
		t.Fatalf("the leases bucket: %v", err)
	}
	waitHealthy(t, ctx, b)
}
