package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
)

// entry is a KV entry as a watcher delivers it.
type entry struct {
	key     string
	value   []byte
	rev     uint64
	created time.Time
	op      jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return "test" }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return e.created }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

func leaseEntry(inst string, at time.Time) entry { return leaseEntryTTL(inst, at, 0) }

// leaseEntryTTL is a lease declaring its instance's TTL (0: none, as
// versions before it wrote).
func leaseEntryTTL(inst string, at time.Time, ttl time.Duration) entry {
	v, _ := json.Marshal(lease{Instance: inst, TTLMillis: ttl.Milliseconds()})
	return entry{key: token(inst), value: v, created: at, op: jetstream.KeyValuePut}
}

func lockEntryOf(ref hub.AnswerRef, rev uint64) entry {
	v, _ := json.Marshal(ref)
	return entry{key: ref.ConversationID, value: v, rev: rev, op: jetstream.KeyValuePut}
}

// TestLeaseJudgement covers when an instance counts as dead, by the leases
// stream's clock only (never this host's), and that a step of that clock
// (its leader moved to a NATS server whose clock differs) makes no live
// instance dead.
func TestLeaseJudgement(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		peerID    string          // defaults to "peer"
		self      []time.Duration // own renewals, by this host's clock (offsets from t0)
		peer      *time.Duration  // the peer's newest lease, if any, written then
		peerTTL   time.Duration   // the TTL the peer's lease declares
		deleted   bool            // the peer deleted its lease (clean shutdown)
		failed    bool            // the last own renewal failed
		judging   bool
		peerDead  bool
		lockSince time.Duration // when the peer's lock was first seen
		live      int           // instances with a live lease, this one included
		alone     bool          // Alone: judging, and no other instance live by it
		// Own renewals from outage[0] until outage[1] fail (NATS down:
		// none lands).
		outage [2]time.Duration
		// The leases stream's clock reads this host's plus step from
		// stepAt on (its leader moved to a server whose clock is off).
		step, stepAt time.Duration
	}{
		{name: "own lease not seen yet", peer: ptr(0), live: 0},
		{name: "fresh start: not judging yet", self: []time.Duration{0, 3 * time.Second}, peer: ptr(0), live: 2},
		{name: "peer renewing", self: []time.Duration{0, 12 * time.Second}, peer: ptr(9 * time.Second), judging: true, live: 2},
		{name: "peer silent for more than a TTL", self: []time.Duration{0, 21 * time.Second}, peer: ptr(10 * time.Second), judging: true, peerDead: true, live: 1, alone: true},
		{name: "own renewals failing: no judgement", self: []time.Duration{0, 30 * time.Second}, peer: ptr(0), failed: true, live: 1},
		// An outage cut this instance and the peer off together (from 3 s
		// to 20 s): this instance's renewal at 21 s lands before the
		// peer's first one. live counts the peer out, but it is not
		// judged dead (its answers are not taken over): not alone either,
		// until this instance has renewed for a TTL again.
		{name: "after an outage, own renewal first: peer not judged, not alone", self: renewals(0, 27, 3), outage: [2]time.Duration{3 * time.Second, 20 * time.Second},
			peer: ptr(2 * time.Second), live: 1},
		{name: "after an outage, a peer silent for a TTL of own renewals: alone", self: renewals(0, 33, 3), outage: [2]time.Duration{3 * time.Second, 20 * time.Second},
			peer: ptr(2 * time.Second), judging: true, peerDead: true, live: 1, alone: true},
		{name: "after an outage, the peer renewed: not alone", self: renewals(0, 33, 3), outage: [2]time.Duration{3 * time.Second, 20 * time.Second},
			peer: ptr(32 * time.Second), judging: true, live: 2},
		{name: "alone from the start", self: renewals(0, 12, 3), judging: true, peerDead: true, live: 1, alone: true},
		// (alone goes by the leases: judging, a live peer's would be seen)
		{name: "peer never seen, lock new", self: []time.Duration{0, 12 * time.Second}, lockSince: 11 * time.Second, judging: true, live: 1, alone: true},
		{name: "peer never seen, lock older than a TTL", self: []time.Duration{0, 25 * time.Second}, lockSince: 12 * time.Second, judging: true, peerDead: true, live: 1, alone: true},
		{name: "peer deleted its lease", self: []time.Duration{0, 12 * time.Second}, peer: ptr(11 * time.Second), deleted: true, lockSince: 0, judging: true, peerDead: true, live: 1, alone: true},
		{name: "peer with an encoded id deleted its lease", peerID: "host.example-1", self: []time.Duration{0, 12 * time.Second}, peer: ptr(11 * time.Second), deleted: true, lockSince: 0, judging: true, peerDead: true, live: 1, alone: true},
		// CHATD_LEASE_TTL differs between instances (changed one instance
		// at a time): each is judged by the longer of the two TTLs.
		{name: "peer with a longer TTL delays judging", self: []time.Duration{0, 12 * time.Second}, peer: ptr(11 * time.Second), peerTTL: 30 * time.Second, live: 2},
		{name: "peer with a longer TTL, silent longer than ours, not than its own", self: []time.Duration{0, 31 * time.Second}, peer: ptr(10 * time.Second), peerTTL: 30 * time.Second, judging: true, live: 2},
		{name: "peer with a longer TTL, silent longer than its own", self: []time.Duration{0, 45 * time.Second}, peer: ptr(10 * time.Second), peerTTL: 30 * time.Second, judging: true, peerDead: true, live: 1, alone: true},
		{name: "peer with a shorter TTL is judged by ours", self: []time.Duration{0, 21 * time.Second}, peer: ptr(15 * time.Second), peerTTL: 2 * time.Second, judging: true, live: 2},
		// The stream's leader moves to a server whose clock differs by
		// 8 s (more than the TTL less the renewal interval) or 12 s (more
		// than the TTL): the peer renewing every 3 s is not dead, judging
		// pauses, and resumes after a full TTL of renewals by the new clock.
		{name: "leader clock steps forward 8 s between renewals: peer not dead", self: renewals(0, 15, 3), peer: ptr(11 * time.Second),
			step: 8 * time.Second, stepAt: 14 * time.Second, live: 1},
		{name: "leader clock stepped forward 8 s: judged again after a TTL by the new clock", self: renewals(0, 27, 3), peer: ptr(26 * time.Second),
			step: 8 * time.Second, stepAt: 14 * time.Second, judging: true, live: 2},
		// (live, a gauge, counts the peer out until this instance renews)
		{name: "leader clock steps back 12 s, the peer renews first: peer not dead", self: renewals(0, 12, 3), peer: ptr(13 * time.Second),
			step: -12 * time.Second, stepAt: 13 * time.Second, live: 1},
		{name: "leader clock steps back 12 s, then this instance renews: peer not dead", self: renewals(0, 15, 3), peer: ptr(13 * time.Second),
			step: -12 * time.Second, stepAt: 13 * time.Second, live: 2},
		{name: "leader clock stepped back 12 s: judged again after a TTL by the new clock", self: renewals(0, 27, 3), peer: ptr(25 * time.Second),
			step: -12 * time.Second, stepAt: 13 * time.Second, judging: true, live: 2},
		{name: "leader clock off by less than the tolerance: judged", self: renewals(0, 15, 3), peer: ptr(11 * time.Second),
			step: 1500 * time.Millisecond, stepAt: 14 * time.Second, judging: true, live: 2},
		{name: "after a step, a peer silent for more than a TTL is dead", self: renewals(0, 36, 3), peer: ptr(11 * time.Second),
			step: 8 * time.Second, stepAt: 14 * time.Second, judging: true, peerDead: true, live: 1, alone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			peer := tt.peerID
			if peer == "" {
				peer = "peer"
			}
			v := newLeaseView("me", ttl, SessionKeys{}, nil)
			v.renewed(time.Time{}, nil)
			leader := func(d time.Duration) time.Time { // the stream's time of a write at d
				if tt.step != 0 && d >= tt.stepAt {
					d += tt.step
				}
				return t0.Add(d)
			}
			var rev uint64
			peerDone := tt.peer == nil
			writePeer := func() {
				rev++
				e := leaseEntryTTL(peer, leader(*tt.peer), tt.peerTTL)
				e.rev = rev
				v.apply(e)
				peerDone = true
			}
			for i, d := range tt.self {
				if !peerDone && *tt.peer < d {
					writePeer()
				}
				if d >= tt.outage[0] && d < tt.outage[1] {
					failRenewal(v, t0.Add(d))
					continue
				}
				rev++
				renew(v, t0.Add(d), leader(d), rev, i%2 == 1)
			}
			if !peerDone {
				writePeer()
			}
			if tt.deleted {
				v.apply(entry{key: token(peer), op: jetstream.KeyValueDelete})
			}
			if tt.failed {
				v.renewed(time.Time{}, errTest)
			}
			if n := v.live(); n != tt.live {
				t.Fatalf("live = %d, want %d", n, tt.live)
			}
			now, ok := v.judging()
			if ok != tt.judging {
				t.Fatalf("judging = %v, want %v", ok, tt.judging)
			}
			if alone := v.alone(); alone != tt.alone {
				t.Fatalf("alone = %v, want %v", alone, tt.alone)
			}
			if !ok {
				return
			}
			if dead := v.dead(peer, now, t0.Add(tt.lockSince)); dead != tt.peerDead {
				t.Fatalf("dead = %v, want %v", dead, tt.peerDead)
			}
		})
	}
}

// TestClaimableAfterLeaderClockStep: a claim (Bus.ownerLeaseExpired)
// reads the owner's lease from the stream's leader and judges it as the
// view does: not while judging pauses after a step of the stream's clock,
// and a lease newer than the view's is live, whatever its time (a leader
// whose clock is behind stamped it). Before, a claim judged any lease
// read by the stream's time at this instance's newest lease, so after a
// step it took a live owner's answer over.
func TestClaimableAfterLeaderClockStep(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := time.Second
	tests := []struct {
		name         string
		self         []time.Duration // own renewals, by this host's clock
		step, stepAt time.Duration   // the stream's clock reads this host's plus step from stepAt on
		seen         time.Duration   // when the owner's lease the view holds was written
		read         time.Duration   // when the lease the claim reads was written (== seen: the same one)
		expired      bool
	}{
		{name: "owner silent for more than a TTL", self: renewals(0, 24, 3), seen: 11 * s, read: 11 * s, expired: true},
		{name: "owner renewed after the view's lease", self: renewals(0, 24, 3), seen: 11 * s, read: 23 * s},
		{name: "not judging yet", self: renewals(0, 3, 3), seen: -20 * s, read: -20 * s},
		{name: "leader clock steps forward 8 s: the owner's lease before it not expired", self: renewals(0, 15, 3),
			step: 8 * s, stepAt: 14 * s, seen: 11 * s, read: 11 * s},
		{name: "leader clock steps back 12 s: the owner's renewal by it not expired", self: renewals(0, 12, 3),
			step: -12 * s, stepAt: 13 * s, seen: 10 * s, read: 13 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newLeaseView("me", ttl, SessionKeys{}, nil)
			leader := func(d time.Duration) time.Time {
				if tt.step != 0 && d >= tt.stepAt {
					d += tt.step
				}
				return t0.Add(d)
			}
			var rev, seenRev uint64
			for i, d := range tt.self {
				if seenRev == 0 && tt.seen < d {
					rev++
					seenRev = rev
					e := leaseEntry("owner", leader(tt.seen))
					e.rev = rev
					v.apply(e)
				}
				rev++
				renew(v, t0.Add(d), leader(d), rev, i%2 == 1)
			}
			read := seenLease{created: leader(tt.read), rev: seenRev}
			if tt.read != tt.seen {
				read.rev = rev + 1
			}
			if got := v.claimable(token("owner"), read); got != tt.expired {
				t.Fatalf("claimable = %v, want %v", got, tt.expired)
			}
		})
	}
}

// TestLeaderClockStepWarnedOnce: a step of the leases stream's clock is
// warned of and counted once for each pause of judging it causes, however
// often the leader moves during the pause.
func TestLeaderClockStepWarnedOnce(t *testing.T) {
	t.Parallel()
	logs := make(logRecords, 64)
	v := newLeaseView("me", 10*time.Second, SessionKeys{}, slog.New(logs))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	offsets := map[int]time.Duration{5: 8 * time.Second, 6: 8 * time.Second} // a rolling restart: there and back
	for i := 14; i < 30; i++ {
		offsets[i] = -5 * time.Second // a later step, once judging resumed
	}
	for i := range 30 { // a renewal every 3 s
		local := time.Duration(3*i) * time.Second
		renew(v, t0.Add(local), t0.Add(local+offsets[i]), uint64(i+1), false)
	}
	var warned []string
	for len(logs) > 0 {
		if r := <-logs; r.Level == slog.LevelWarn {
			warned = append(warned, logAttr(r, "step"))
		}
	}
	if want := []string{"8s", "-5s"}; !slices.Equal(warned, want) || v.clockSteps() != 2 {
		t.Fatalf("warned of steps %v, counted %d; want %v, 2", warned, v.clockSteps(), want)
	}
	if _, ok := v.judging(); !ok {
		t.Fatal("not judging a TTL after the last step")
	}
}

// TestOrphanReports: a dead instance's lock is reported once per TTL, a
// live one's and this instance's never, and a released lock no more.
func TestOrphanReports(t *testing.T) {
	t.Parallel()
	leases, locks, t0 := newViews()
	leases.apply(leaseEntry("me", t0))
	leases.apply(leaseEntry("live", t0))
	leases.apply(leaseEntry("dead", t0))
	mine := hub.AnswerRef{ConversationID: "c1", MessageID: "m1", Instance: "me"}
	alive := hub.AnswerRef{ConversationID: "c2", MessageID: "m2", Instance: "live"}
	orphan := hub.AnswerRef{ConversationID: "c3", MessageID: "m3", Instance: "dead"}
	for i, r := range []hub.AnswerRef{mine, alive, orphan} {
		locks.apply(lockEntryOf(r, uint64(i+1)))
	}
	step := func(at time.Duration) []hub.AnswerRef {
		leases.apply(leaseEntry("me", t0.Add(at)))
		leases.apply(leaseEntry("live", t0.Add(at)))
		now, ok := leases.judging()
		if !ok {
			t.Fatalf("not judging at %s", at)
		}
		return locks.orphans("me", leases, now)
	}
	if got := step(11 * time.Second); len(got) != 1 || got[0] != orphan {
		t.Fatalf("first report %+v, want only %+v", got, orphan)
	}
	if got := step(15 * time.Second); len(got) != 0 {
		t.Fatalf("reported again within a TTL: %+v", got)
	}
	if got := step(22 * time.Second); len(got) != 1 {
		t.Fatalf("not reported again after a TTL: %+v", got)
	}
	locks.apply(entry{key: orphan.ConversationID, op: jetstream.KeyValueDelete})
	if got := step(40 * time.Second); len(got) != 0 {
		t.Fatalf("a released lock reported: %+v", got)
	}
	// The dead instance is forgotten once the bucket no longer keeps it
	// (six TTLs, at least a minute); one silent as long whose lease
	// declares a longer TTL is still kept in the bucket, and in the view.
	leases.apply(leaseEntryTTL("slow", t0, 20*time.Second))
	if got := step(65 * time.Second); len(got) != 0 {
		t.Fatalf("a released lock reported: %+v", got)
	}
	now, _ := leases.judging()
	leases.forget(now)
	leases.mu.Lock()
	_, kept := leases.seen[token("dead")]
	_, live := leases.seen[token("live")]
	_, slow := leases.seen[token("slow")]
	leases.mu.Unlock()
	if kept || !live || !slow {
		t.Fatalf("after forget: dead kept %v, live kept %v, slow kept %v", kept, live, slow)
	}
}

// TestMirrorPasses: a new watcher delivers every current value again; what
// it does not deliver was removed while no watcher saw it and is dropped
// from the views, and what it delivers again keeps when it was first seen.
func TestMirrorPasses(t *testing.T) {
	t.Parallel()
	leases, locks, t0 := newViews()
	kept := hub.AnswerRef{ConversationID: "c1", MessageID: "m1", Instance: "peer"}
	released := hub.AnswerRef{ConversationID: "c2", MessageID: "m2", Instance: "peer"}

	leases.begin()
	locks.begin()
	leases.apply(leaseEntry("me", t0))
	leases.apply(leaseEntry("peer", t0))
	leases.apply(leaseEntry("gone", t0))
	locks.apply(lockEntryOf(kept, 1))
	locks.apply(lockEntryOf(released, 2))
	leases.synced()
	locks.synced()
	firstSeen := locks.locks[kept.ConversationID].firstSeen

	// A new watcher: the peer renewed, "gone"'s lease expired and the
	// second lock was released while the old watcher was lost.
	leases.begin()
	locks.begin()
	leases.apply(leaseEntry("me", t0.Add(5*time.Second)))
	leases.apply(leaseEntry("peer", t0.Add(5*time.Second)))
	locks.apply(lockEntryOf(kept, 1))
	leases.synced()
	locks.synced()

	if _, ok := leases.seen[token("gone")]; ok {
		t.Error("a lease the new watcher did not deliver is still seen")
	}
	if l := leases.seen[token("peer")]; !l.created.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("peer's lease created %v, want the new one", l.created)
	}
	if _, ok := locks.locks[released.ConversationID]; ok {
		t.Error("a lock the new watcher did not deliver is still held in the view")
	}
	l, ok := locks.locks[kept.ConversationID]
	if !ok || !l.firstSeen.Equal(firstSeen) {
		t.Errorf("a lock delivered again: present %v, first seen %v, want %v", ok, l, firstSeen)
	}
	// Changes after the current values belong to the same pass.
	locks.apply(lockEntryOf(released, 3))
	locks.synced()
	if _, ok := locks.locks[released.ConversationID]; !ok {
		t.Error("a lock taken after the pass synced was dropped")
	}
}

// TestLockViewAfterBucketMadeAgain: when NATS lost its data and the
// locks bucket was made again, revisions start again from 1, so a lock
// taken in the new bucket can come with the revision the view holds for
// the same conversation's lock of the bucket lost. The view took it for
// that lock delivered again and kept the old holder: the new holder,
// were it to die, was never reported and its answer never ended.
func TestLockViewAfterBucketMadeAgain(t *testing.T) {
	t.Parallel()
	_, locks, _ := newViews()
	lost := hub.AnswerRef{ConversationID: "c1", MessageID: "m-lost", UserID: "u1", Instance: "gone"}
	taken := hub.AnswerRef{ConversationID: "c1", MessageID: "m-new", UserID: "u1", Instance: "peer"}
	locks.begin()
	locks.apply(lockEntryOf(lost, 3))
	locks.synced()
	locks.begin() // the watcher of the bucket made again
	locks.apply(lockEntryOf(taken, 3))
	locks.synced()
	if got := locks.locks[taken.ConversationID]; got == nil || got.ref != taken {
		t.Fatalf("the view holds %+v, want the lock of the new bucket %+v", got, taken)
	}
}

// newViews returns the views of instance "me" (lease TTL 10 s, its own
// lease renewed) and the time the tests start from.
func newViews() (*leaseView, *lockView, time.Time) {
	leases := newLeaseView("me", 10*time.Second, SessionKeys{}, nil)
	leases.renewed(time.Time{}, nil)
	return leases, newLockView(leases), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
}

var errTest = errors.New("renewal failed")

func ptr(d time.Duration) *time.Duration { return &d }

// renewals are the times of renewals every every seconds from first to
// last (seconds from t0).
func renewals(first, last, every int) []time.Duration {
	var out []time.Duration
	for s := first; s <= last; s += every {
		out = append(out, time.Duration(s)*time.Second)
	}
	return out
}

// renew plays a renewal of "me"'s lease in v as Bus.renew makes it: sent
// and answered at local (this host's clock), stamped created by the
// stream's leader at revision rev, its entry delivered after the answer
// or, deliveredFirst, before it.
func renew(v *leaseView, local, created time.Time, rev uint64, deliveredFirst bool) {
	v.clock = func() time.Time { return local }
	stamp := local.Add(time.Hour) // the wall clock of the host: only tells renewals apart
	val, _ := json.Marshal(lease{Instance: "me", Renewed: stamp})
	e := entry{key: token("me"), value: val, rev: rev, created: created, op: jetstream.KeyValuePut}
	v.sending(stamp)
	if deliveredFirst {
		v.apply(e)
	}
	v.renewed(stamp, nil)
	if !deliveredFirst {
		v.apply(e)
	}
}

// failRenewal plays a renewal of "me"'s lease sent at local (this host's
// clock) that failed and never landed (NATS was down).
func failRenewal(v *leaseView, local time.Time) {
	v.clock = func() time.Time { return local }
	stamp := local.Add(time.Hour)
	v.sending(stamp)
	v.renewed(stamp, errTest)
}

// TestWatcherFailureLogged: a bucket that cannot be watched (here the
// NATS user may not create the watcher's consumer, as with permissions
// that predate a bucket) leaves the instance unable to tell dead
// instances from live ones, so no crashed instance's answers would be
// ended by it: that is a warning naming the bucket and the reason, not a
// debug line.
func TestWatcherFailureLogged(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw",
		DenyPublish: []string{"$JS.API.CONSUMER.CREATE.KV_chatd_locks", "$JS.API.CONSUMER.CREATE.KV_chatd_locks.>"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := make(logRecords, 1024)
	b, err := New(Options{URLs: c.URLs(), InstanceID: "no-watch", User: "chatd", Password: "pw",
		LeaseTTL: time.Second, Stream: StreamLimits{MaxBytes: 64 << 20}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	b.Attach(newRecorder())
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	for {
		select {
		case r := <-logs:
			if r.Level >= slog.LevelWarn && strings.Contains(r.Message, "watch") && logAttr(r, "bucket") == "chatd_locks" {
				if logAttr(r, "err") == "" {
					t.Fatalf("%q says no reason", r.Message)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("a bucket that cannot be watched is not warned about")
		}
	}
}

// TestUnreadableValuesWarned: an unreadable lease or lock is passed over
// as before (what this watcher's pass saw of the key stands), and now
// warned of once:
// delivered again it says nothing more, and only once the key held a
// readable value (or was deleted) is its next bad value warned of again.
func TestUnreadableValuesWarned(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	holder := answer("c-bad", "m-bad", "other")
	tests := []struct {
		name, bucket string
		good, bad    entry
		// view makes the view logging to log; kept reports whether the
		// good value stands after the bad one.
		view func(log *slog.Logger) (apply func(entry), kept func() bool)
	}{
		{"lease", "leases", leaseEntry("other", at),
			entry{key: token("other"), value: []byte("{not json"), rev: 7, created: at.Add(time.Second), op: jetstream.KeyValuePut},
			func(log *slog.Logger) (func(entry), func() bool) {
				v := newLeaseView("me", 10*time.Second, SessionKeys{}, log)
				v.apply(leaseEntry("me", at))
				return func(e entry) { v.apply(e) }, func() bool { return v.live() == 2 }
			}},
		{"lock", "locks", lockEntryOf(holder, 1),
			entry{key: holder.ConversationID, value: []byte("[1,2"), rev: 2, op: jetstream.KeyValuePut},
			func(log *slog.Logger) (func(entry), func() bool) {
				v := newLockView(newLeaseView("me", 10*time.Second, SessionKeys{}, log))
				return func(e entry) { v.apply(e) }, func() bool {
					v.mu.Lock()
					defer v.mu.Unlock()
					l, ok := v.locks[holder.ConversationID]
					return ok && l.ref == holder
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := make(logRecords, 16)
			apply, kept := tt.view(slog.New(logs))
			warnings := func() []slog.Record {
				var out []slog.Record
				for {
					select {
					case r := <-logs:
						if r.Level == slog.LevelWarn {
							out = append(out, r)
						}
					default:
						return out
					}
				}
			}
			apply(tt.good)
			apply(tt.bad)
			w := warnings()
			if len(w) != 1 || !strings.Contains(w[0].Message, tt.bucket) || logAttr(w[0], "key") != tt.bad.key ||
				logAttr(w[0], "revision") != strconv.FormatUint(tt.bad.rev, 10) {
				t.Fatalf("warnings after an unreadable value: %v, want one naming the %s bucket, key %s", w, tt.bucket, tt.bad.key)
			}
			if !kept() {
				t.Fatal("the unreadable value changed what was seen of the key")
			}
			apply(tt.bad)
			if w := warnings(); len(w) != 0 {
				t.Fatalf("the same unreadable value warned of again: %v", w)
			}
			apply(tt.good)
			apply(tt.bad)
			if w := warnings(); len(w) != 1 {
				t.Fatalf("%d warnings of a new bad value after a readable one, want 1", len(w))
			}
		})
	}
}

// TestUnreadableOwnerLeaseWarned: a claim reading an owner's lease it
// cannot decode judges it by this instance's TTL, as before, and warns of
// it once however often it is read.
func TestUnreadableOwnerLeaseWarned(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := make(logRecords, 1024)
	b, _ := newBusWith(t, c, Options{InstanceID: "bad-lease", LeaseTTL: time.Minute, Logger: slog.New(logs)})
	waitHealthy(t, ctx, b)
	if _, err := b.res.Load().leases.Put(ctx, token("ghost"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if expired, err := b.ownerLeaseExpired(ctx, "ghost"); err != nil || expired {
			t.Fatalf("a fresh unreadable lease: expired %v (%v), want judged alive by this instance's TTL", expired, err)
		}
	}
	warned := 0
	for len(logs) > 0 {
		if r := <-logs; r.Level == slog.LevelWarn && strings.Contains(r.Message, "leases bucket; judged by this instance's lease TTL") &&
			logAttr(r, "key") == token("ghost") {
			warned++
		}
	}
	if warned != 1 {
		t.Fatalf("%d warnings of the unreadable lease, want 1", warned)
	}
}
