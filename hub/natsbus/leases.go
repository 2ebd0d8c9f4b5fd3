package natsbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// lease is the value of an instance's key in the leases bucket.
type lease struct {
	Instance string    `json:"instance"`
	Renewed  time.Time `json:"renewed"` // the instance's clock, for operators
	// TTLMillis is the instance's own lease TTL: the others judge it by
	// the longer of theirs and this one, so an instance given a longer
	// TTL (renewing less often) is not declared dead between renewals by
	// one with a shorter TTL. Absent in leases of versions before it.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
	// Signs and Accepts are the instance's SessionKeys (absent in leases
	// of versions before them, and of instances without keys).
	Signs   string   `json:"signs,omitempty"`
	Accepts []string `json:"accepts,omitempty"`
}

// leaseView is what this instance knows of every instance's lease, by
// the leases stream's own clock (the Created time of each entry), so clock
// skew between chatd hosts does not matter. That clock is the one of the
// NATS server leading the stream, so it steps when the leadership moves
// to a server whose clock differs: a step is found and judging paused
// (see leaseclock.go). Each instance is judged by the
// longer of this instance's TTL and its own, and this instance judges
// others only after renewing for the longest TTL among the leases it sees,
// so instances with different CHATD_LEASE_TTL values (a rolling change of
// it) do not declare each other dead while they renew.
type leaseView struct {
	ttl  time.Duration
	keys SessionKeys  // this instance's, compared with every other's
	log  *slog.Logger // where disagreements about keys are told
	bad  *badValues   // warns of unreadable leases the watcher delivers
	// badRead warns of unreadable leases read by a claim (ownerLeaseExpired).
	badRead *badValues

	mu          sync.Mutex
	self        string
	seen        map[string]seenLease // by token(instance)
	pass        uint64               // the current watcher's number (see begin)
	ownNow      time.Time            // created of this instance's newest lease seen
	streakStart time.Time            // ownNow when renewals last resumed after a failure
	renewedAt   time.Time            // local time of the last successful renewal
	failed      bool                 // the last renewal failed
	clock       func() time.Time     // this host's time (time.Now; tests set it)
	// host is this host's clock as the limits read it (Options.clock),
	// natsOffset how far the leases stream's clock was ahead of it at the
	// last renewal landed (natsNow).
	host       func() time.Time
	natsOffset time.Duration
	natsKnown  bool
	// renewals are this instance's latest renewals (at most keptRenewals),
	// the last one landed and judged is ref, newest the newest entry of
	// the stream delivered in this pass: see leaseclock.go.
	renewals []*ownRenewal
	ref      *ownRenewal
	newest   streamPoint
	steps    int64 // steps of the stream's clock found (LeaseClockSteps)
	stepping bool  // a step was warned of and judging has not resumed since
	// noticed is when instances without a lease seen were first named
	// where they hold something (connection counts), by instance id: one
	// just started may hold before its lease reaches this view.
	noticed map[string]time.Time
	// rejoins counts the times the other instances may have judged this
	// one dead and dropped its connection counts (see seenAgain); rejoined
	// is the time of the lease that came back after such a gap, until the
	// renewals have gone on for a TTL after it.
	rejoins  uint64
	rejoined time.Time
}

// seenLease is an instance's newest lease seen.
type seenLease struct {
	created time.Time       // by the leases stream's clock
	rev     uint64          // the entry's revision
	ttl     time.Duration   // the instance's own TTL (0: not said)
	keys    keyDisagreement // how its session keys and this instance's disagree
	pass    uint64          // the watcher that delivered it last
}

// newLeaseView returns the view of instance self, whose lease TTL is ttl
// and session keys keys; log receives what is said of other instances'
// keys (nil: nothing is).
func newLeaseView(self string, ttl time.Duration, keys SessionKeys, log *slog.Logger) *leaseView {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &leaseView{self: self, ttl: ttl, keys: keys, log: log, seen: make(map[string]seenLease), clock: time.Now, host: time.Now,
		noticed: make(map[string]time.Time), bad: newBadValues(log, "leases"), badRead: newBadValues(log, "leases")}
}

// begin starts the pass of a new watcher, which delivers every lease again.
func (v *leaseView) begin() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pass++
	v.newest = streamPoint{}
}

// synced ends the current values of the pass: a lease it did not deliver
// is gone from the bucket (expired or deleted while no watcher saw it).
func (v *leaseView) synced() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key, l := range v.seen {
		if l.pass != v.pass {
			delete(v.seen, key)
		}
	}
}

// apply records one entry of the leases bucket, and logs (after the
// lock) when another instance starts or stops disagreeing with this one
// about session keys. An unreadable lease is warned of and passed over.
func (v *leaseView) apply(e jetstream.KeyValueEntry) {
	var l lease
	if e.Operation() == jetstream.KeyValuePut {
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			v.bad.bad(e.Key(), e.Revision(), err, "passed over")
			return
		}
	}
	v.bad.good(e.Key())
	v.mu.Lock()
	before := v.seen[e.Key()].keys
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.seen, e.Key())
		v.mu.Unlock()
		return
	}
	seen := seenLease{created: e.Created(), rev: e.Revision(), ttl: time.Duration(l.TTLMillis) * time.Millisecond, pass: v.pass}
	if l.Instance != v.self {
		seen.keys = v.keys.disagreement(l)
	}
	v.seen[e.Key()] = seen
	step := v.inOrder(e.Revision(), e.Created())
	if l.Instance == v.self {
		step = cmp.Or(step, v.ownLease(l.Renewed, e.Created()))
	}
	v.mu.Unlock()
	v.warnStep(step)
	logKeyChange(v.log, l.Instance, before, seen.keys)
}

// advance moves the leases stream's clock as this instance sees it to
// created, one of its own leases, if that is later; v.mu is held.
func (v *leaseView) advance(created time.Time) {
	if created.After(v.ownNow) {
		v.seenAgain(created)
		if v.streakStart.IsZero() {
			v.streakStart = created
		}
		v.ownNow = created
	}
}

// seenAgain counts in rejoins this instance's lease created after the one
// before (ownNow) by more than its TTL: the others judge it by that TTL
// or a longer one, so only then may they have judged it dead meanwhile
// (cut off from NATS, its process or VM paused) and dropped its
// connection counts, while its tabs stayed open. It counts once more
// when its renewals have gone on for a TTL after that lease: an instance
// whose view had not yet reached it may have dropped the counts written
// again at first, and by then every instance whose watcher keeps up has
// seen it. v.mu is held.
func (v *leaseView) seenAgain(created time.Time) {
	switch {
	case !v.ownNow.IsZero() && created.Sub(v.ownNow) > v.ttl:
		v.rejoins++
		v.rejoined = created
	case !v.rejoined.IsZero() && created.Sub(v.rejoined) >= v.ttl:
		v.rejoins++
		v.rejoined = time.Time{}
	}
}

// rejoinCount is how many times this instance's connection counts may
// have been dropped by the others (see seenAgain).
func (v *leaseView) rejoinCount() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.rejoins
}

// renewed records the outcome of the renewal whose lease carries stamp
// (see sending).
func (v *leaseView) renewed(stamp time.Time, err error) {
	v.mu.Lock()
	if err != nil {
		v.failed = true
		v.streakStart = time.Time{} // judged again only after a full TTL of renewals
	} else {
		v.failed = false
		v.renewedAt = v.clock()
	}
	step := v.answered(stamp, err != nil)
	v.mu.Unlock()
	v.warnStep(step)
}

// sinceRenewed is how long ago the lease was last renewed (forever if never).
func (v *leaseView) sinceRenewed() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.renewedAt.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return v.clock().Sub(v.renewedAt)
}

// judging reports whether this instance may declare others dead: its own
// lease has been renewed without a break for the longest TTL of the
// leases it sees (its own at least), so every live instance has had time
// to renew its own since the last outage.
func (v *leaseView) judging() (now time.Time, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ownNow, v.judges()
}

// judges is judging's verdict; v.mu is held.
func (v *leaseView) judges() bool {
	return !v.failed && !v.streakStart.IsZero() && v.ownNow.Sub(v.streakStart) >= v.longestTTL()
}

// dead reports whether instance's lease expired by now (the leases
// stream's clock). An instance never seen is dead when seenSince, the time
// its lock was first seen, is as old as the longest TTL of the leases
// seen: a live one would have renewed.
func (v *leaseView) dead(instance string, now, seenSince time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.seen[token(instance)]; ok {
		return v.expired(last, now)
	}
	return now.Sub(seenSince) > v.longestTTL()
}

// deadHolder reports whether instance, named as holding something (its
// connection counts), is dead by now (the leases stream's clock): its
// lease expired, or none was seen for the longest TTL of the leases seen
// since it was first named (a live instance, even one that has just
// started, would have renewed by then).
func (v *leaseView) deadHolder(instance string, now time.Time) bool {
	return v.deadNamed(instance, now, v.noticed)
}

// deadNamed is deadHolder for a caller that keeps its own record of when
// it first named each instance without a lease seen (noticed, changed
// here: an instance with a lease seen is taken out), so that its verdict
// does not depend on how often it asks (forget drops what deadHolder
// noticed after leaseBucketAge).
func (v *leaseView) deadNamed(instance string, now time.Time, noticed map[string]time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.seen[token(instance)]; ok {
		delete(noticed, instance)
		return v.expired(last, now)
	}
	since, ok := noticed[instance]
	if !ok {
		since = now
		noticed[instance] = now
	}
	return now.Sub(since) > v.longestTTL()
}

// ttlOf is how long l's instance may go without renewing: the longer of
// this instance's TTL and the one its lease declares.
func (v *leaseView) ttlOf(l seenLease) time.Duration { return max(v.ttl, l.ttl) }

// expired reports whether lease l is over by now (the leases stream's
// clock).
func (v *leaseView) expired(l seenLease, now time.Time) bool { return now.Sub(l.created) > v.ttlOf(l) }

// longestTTL is the longest TTL among this instance's and the leases
// seen; v.mu is held.
func (v *leaseView) longestTTL() time.Duration {
	ttl := v.ttl
	for _, l := range v.seen {
		ttl = max(ttl, l.ttl)
	}
	return ttl
}

// ownerLeaseExpired reads the lease of instance from the leases bucket
// (its stream leader) and reports whether it is expired: absent (deleted
// at a clean shutdown, or gone from the bucket), or judged expired by
// this instance's view (see leaseView.claimable).
func (b *Bus) ownerLeaseExpired(ctx context.Context, instance string) (bool, error) {
	e, err := b.res.Load().leases.Get(ctx, token(instance))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true, nil
	}
	if err != nil {
		return false, unavailable("read the lease of "+instance, err)
	}
	var l lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		b.lease.badRead.bad(e.Key(), e.Revision(), err, "judged by this instance's lease TTL")
	} else {
		b.lease.badRead.good(e.Key())
	}
	read := seenLease{created: e.Created(), rev: e.Revision(), ttl: time.Duration(l.TTLMillis) * time.Millisecond}
	return b.lease.claimable(e.Key(), read), nil
}

// claimable reports whether read, the lease under key as a claim read it
// from the stream's leader, is expired: only while this instance judges
// (see judging), and only a lease this view has seen (the same revision)
// or older, judged as the view judges it, by the leases stream's clock at
// this instance's newest lease. A newer one was renewed since this view
// last heard of its instance: it is live, whatever its time says. That
// time comes from the stream's leader now, which may be another server
// than the one that stamped this instance's newest lease (a lease
// stamped by a clock behind would look old), and the view's clock lags
// the stream's by up to a renewal.
func (v *leaseView) claimable(key string, read seenLease) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.judges() {
		return false
	}
	if seen, ok := v.seen[key]; !ok || read.rev > seen.rev {
		return false
	}
	return v.expired(read, v.ownNow)
}

// live is how many instances hold a lease younger than the TTL, this one
// included, by the leases stream's clock at this instance's newest lease
// (0 until this instance has seen its own lease).
func (v *leaseView) live() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ownNow.IsZero() {
		return 0
	}
	n := 0
	for _, l := range v.seen {
		if !v.expired(l, v.ownNow) {
			n++
		}
	}
	return n
}

// alone reports whether this instance is the only live one by its
// judgement: it judges (see judging), and every other instance's lease
// seen is expired by the leases stream's clock at this instance's newest
// lease, as dead finds it. Not while it does not judge: live counts out a
// peer whose lease looks old by then, but the peer may be renewing still
// (after an outage that cut every instance off, this one's renewal may
// land first; a new watcher's pass drops a lease not yet written again;
// the stream's clock may have stepped).
func (v *leaseView) alone() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.judges() {
		return false
	}
	self := token(v.self)
	for key, l := range v.seen {
		if key != self && !v.expired(l, v.ownNow) {
			return false
		}
	}
	return true
}

// keyConflicts is how many instances with a live lease disagree with
// this one about session keys (see SessionKeys).
func (v *leaseView) keyConflicts() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, l := range v.seen {
		if l.keys != (keyDisagreement{}) && !v.expired(l, v.ownNow) {
			n++
		}
	}
	return n
}

// forget drops what is known of instances silent for longer than the
// leases bucket keeps their entries (their keys are gone there too; the
// bucket keeps entries leaseBucketAge of the longest TTL of the instances
// that started, see Bus.provision), so the view does not grow with every
// instance that ever ran.
func (v *leaseView) forget(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key, last := range v.seen {
		if now.Sub(last.created) > leaseBucketAge(v.ttlOf(last)) {
			delete(v.seen, key)
		}
	}
	for instance, at := range v.noticed {
		if _, ok := v.seen[token(instance)]; ok || now.Sub(at) > leaseBucketAge(v.longestTTL()) {
			delete(v.noticed, instance)
		}
	}
}

// lockView mirrors the locks bucket.
type lockView struct {
	bad      *badValues // warns of unreadable locks; set once by newLockView
	mu       sync.Mutex
	locks    map[string]*lockEntry // by key
	reported map[string]time.Time  // key -> lease time of the last Orphaned report
	ownNow   func() time.Time      // the leases' clock; set once by newLockView
	pass     uint64                // the current watcher's number (see begin)
}

type lockEntry struct {
	ref       hub.AnswerRef
	rev       uint64
	firstSeen time.Time // lease clock when this revision was first seen
	pass      uint64    // the watcher that delivered it last
}

// newLockView mirrors the locks, dating each by leases' clock.
func newLockView(leases *leaseView) *lockView {
	return &lockView{locks: make(map[string]*lockEntry), reported: make(map[string]time.Time),
		ownNow: func() time.Time { now, _ := leases.judging(); return now }, bad: newBadValues(leases.log, "locks")}
}

// apply records one entry of the locks bucket; an unreadable lock is
// warned of and passed over (what was seen of the key before stands
// until a new watcher's pass ends without it, see synced).
func (v *lockView) apply(e jetstream.KeyValueEntry) {
	var ref hub.AnswerRef
	if e.Operation() == jetstream.KeyValuePut {
		if err := json.Unmarshal(e.Value(), &ref); err != nil {
			v.bad.bad(e.Key(), e.Revision(), err, "passed over")
			return
		}
	}
	v.bad.good(e.Key())
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.locks, e.Key())
		delete(v.reported, e.Key())
		return
	}
	// The same revision and holder: delivered again by a new watcher, and
	// first seen stays. The holder is compared too: a bucket made again
	// (see Bus.relostLeases) numbers its revisions from 1 again.
	if old, ok := v.locks[e.Key()]; ok && old.rev == e.Revision() && old.ref == ref {
		old.pass = v.pass
		return
	}
	v.locks[e.Key()] = &lockEntry{ref: ref, rev: e.Revision(), firstSeen: v.ownNow(), pass: v.pass}
}

// begin starts the pass of a new watcher, which delivers every lock again.
func (v *lockView) begin() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pass++
}

// synced ends the current values of the pass: a lock it did not deliver
// was released while no watcher saw it.
func (v *lockView) synced() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key, l := range v.locks {
		if l.pass != v.pass {
			delete(v.locks, key)
			delete(v.reported, key)
		}
	}
}

// orphans returns the locks whose instance is dead, each at most once per TTL.
func (v *lockView) orphans(self string, leases *leaseView, now time.Time) []hub.AnswerRef {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []hub.AnswerRef
	for key, l := range v.locks {
		if l.ref.Instance == self {
			continue
		}
		if l.firstSeen.IsZero() {
			l.firstSeen = now
		}
		if !leases.dead(l.ref.Instance, now, l.firstSeen) {
			continue
		}
		if last, ok := v.reported[key]; ok && now.Sub(last) < leases.ttl {
			continue
		}
		v.reported[key] = now
		out = append(out, l.ref)
	}
	return out
}

// mirror is what a bucket's watcher keeps up to date.
type mirror interface {
	// begin starts the pass of a new watcher: it delivers every current
	// value again, then each change.
	begin()
	apply(e jetstream.KeyValueEntry)
	// synced says the pass delivered every current value.
	synced()
}

// watched is one bucket mirrored by a watcher. A watcher's JetStream
// consumer can vanish without a word (its NATS node died): the client
// notices only after missing two 5 s idle heartbeats, and in the meantime
// the mirror misses locks taken and leases renewed, so a dead instance's
// answers would wait that long to be ended. So every RenewEvery judgeLoop
// checks the watcher (check): one that has not delivered within a round
// what the bucket held a round earlier is replaced.
type watched struct {
	kv        jetstream.KeyValue
	view      mirror
	delivered atomic.Uint64 // the highest revision delivered to view
	replace   chan struct{} // asks watch for a new watcher (capacity 1)
	mark      uint64        // the bucket's last revision at the previous check (check's own)
}

func newWatched(kv jetstream.KeyValue, view mirror) *watched {
	return &watched{kv: kv, view: view, replace: make(chan struct{}, 1)}
}

// watch feeds every entry of w's bucket (the current values, then each
// change) to its mirror until ctx ends, starting a new watcher when one
// fails or check finds it behind. A watcher that cannot be started is a
// warning (the first failure, then every 20th): without the leases or
// the locks mirrored, this instance ends no dead instance's answers.
func (b *Bus) watch(ctx context.Context, w *watched) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		wctx, cancel := context.WithCancel(ctx)
		kw, err := w.kv.WatchAll(wctx)
		if err != nil {
			cancel()
			if ctx.Err() == nil && attempt%20 == 0 {
				b.log.Warn("cannot watch a bucket; retrying (this instance ends no dead instance's answers meanwhile)",
					slog.String("bucket", w.kv.Bucket()), slog.Int("attempt", attempt+1), slog.Any("err", err))
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff(attempt)):
			}
			continue
		}
		attempt = 0
		select {
		case <-w.replace: // asked for before this watcher started
		default:
		}
		w.view.begin()
		b.mirror(ctx, w, kw)
		// Stopping deletes the watcher's consumer on the server, a
		// request: while cut off from NATS it would wait out its timeout
		// (5 s) for nothing. When the bus closes then, it is left to
		// Close, whose Drain drops the subscription (the server drops
		// the ephemeral consumer by itself).
		if ctx.Err() == nil || b.nc.IsConnected() {
			_ = kw.Stop()
		}
		cancel()
	}
}

// mirror hands kw's entries to w's mirror until kw ends, ctx ends or w
// asks for a new watcher.
func (b *Bus) mirror(ctx context.Context, w *watched, kw jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.replace:
			b.log.Warn("a bucket's watcher fell behind; starting a new one",
				slog.String("bucket", w.kv.Bucket()), slog.Uint64("delivered", w.delivered.Load()))
			return
		case e, ok := <-kw.Updates():
			if !ok {
				return
			}
			if e == nil {
				w.view.synced()
				continue
			}
			w.view.apply(e)
			if r := e.Revision(); r > w.delivered.Load() {
				w.delivered.Store(r)
			}
		}
	}
}

// check asks for a new watcher when the current one has not delivered
// what the bucket held at the previous check (unless that entry is gone
// from the bucket's stream), and returns whether it did.
func (w *watched) check(ctx context.Context) bool {
	st, err := w.kv.Status(ctx)
	if err != nil {
		return false // NATS trouble: the renewal reports it
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return false
	}
	state := bs.StreamInfo().State
	behind := w.mark >= state.FirstSeq && w.delivered.Load() < w.mark
	w.mark = state.LastSeq
	if behind {
		select {
		case w.replace <- struct{}{}:
		default:
		}
	}
	return behind
}

// renewLoop renews the lease every RenewEvery until ctx ends. Nothing else
// runs on its goroutine (but setting JetStream up again when the renewal
// finds the leases bucket gone, see relostLeases): a renewal that waited
// for the watchers' checks (JetStream API requests, slow when NATS is
// loaded) could come after the TTL, and the other instances would take a
// live instance's answers over.
func (b *Bus) renewLoop(ctx context.Context) {
	b.everyRenewal(ctx, func() { b.renew(ctx) })
}

// judgeLoop checks the watchers and the events stream, then reports the
// locks of dead instances to the hub, every RenewEvery until ctx ends.
func (b *Bus) judgeLoop(ctx context.Context) {
	b.everyRenewal(ctx, func() {
		b.checkWatchers(ctx)
		b.checkEvents(ctx)
		b.checkAnswers(ctx)
		b.relock(ctx)
		b.reportOrphans()
	})
}

// everyRenewal runs fn now and then every RenewEvery until ctx ends.
func (b *Bus) everyRenewal(ctx context.Context, fn func()) {
	t := time.NewTicker(b.opts.RenewEvery)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bus) renew(ctx context.Context) {
	stamp := time.Now().UTC()
	val, _ := json.Marshal(lease{Instance: b.id, Renewed: stamp, TTLMillis: b.opts.LeaseTTL.Milliseconds(),
		Signs: b.opts.SessionKeys.Signs, Accepts: b.opts.SessionKeys.Accepts})
	b.lease.sending(stamp)
	rctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL/2)
	_, err := b.res.Load().leases.Put(rctx, token(b.id), val)
	cancel()
	if err != nil && ctx.Err() == nil {
		b.log.Warn("renew lease", slog.Any("err", err))
	}
	if ctx.Err() == nil {
		b.lease.renewed(stamp, err)
	}
	// A renewal that timed out may have found the bucket gone too: it is
	// bounded by half the TTL, and nats.go retries a publish no stream
	// answers twice, 250 ms apart, before it says so (with a TTL of about
	// a second the bound comes first).
	if (noLeader(err) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() == nil {
		b.relostLeases(ctx)
	}
}

// relostLeases sets JetStream up again when the leases bucket is gone
// (a renewal failed without an answer from a stream, or timed out; it
// checks the bucket's stream, which costs a request per such renewal):
// NATS came back from an outage without its data (servers started
// without their store), and every bucket and stream went with it. Without
// them no lease is ever renewed and nothing works until a restart. A
// renewal that found no stream leader during an election finds the bucket
// there and changes nothing. The watchers start again on the new buckets
// (their revisions start again from 1), the optional windows bucket is
// bound again, and every user's count of connections held here is
// written again at the next repair (the instances that find the buckets
// made again by another do so in checkEvents).
func (b *Bus) relostLeases(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, b.opts.RenewEvery/2)
	_, err := b.js.Stream(lctx, "KV_"+b.name("leases"))
	cancel()
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	b.log.Warn("NATS JetStream has lost chatd's buckets and streams (its servers started without their data?); setting them up again")
	b.windows.Store(nil)
	res, err := b.provision(ctx)
	if err != nil {
		b.log.Warn("set JetStream up again; retrying at the next renewal", slog.Any("err", err))
		return
	}
	b.res.Store(res)
	b.tally.allLost() // the counts of users whose connections did not change meanwhile too
	b.held.lost()     // put back by the next judging round (relock)
	for _, w := range b.watchers {
		w.delivered.Store(0)
		select {
		case w.replace <- struct{}{}:
		default:
		}
	}
	b.renew(ctx)
}

// checkWatchers checks that the watchers of the leases and the locks keep up.
func (b *Bus) checkWatchers(ctx context.Context) {
	if hook := b.checkHook.Load(); hook != nil {
		(*hook)()
	}
	for _, w := range b.watchers {
		cctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL/2)
		w.check(cctx)
		cancel()
	}
}

func (b *Bus) reportOrphans() {
	now, ok := b.lease.judging()
	h := b.handler()
	if !ok || h == nil || b.conn.err() != nil {
		return
	}
	b.lease.forget(now)
	for _, a := range b.locks.orphans(b.id, b.lease, now) {
		b.log.Info("answer of a dead instance", slog.String("message_id", a.MessageID),
			slog.String("owner_instance", a.Instance))
		h.Orphaned(a)
	}
}

// errorsIsKV reports whether err says a KV compare failed (the key changed
// or exists). Creating a key over a delete marker reports a conflict as a
// bare "wrong last sequence" (10164 on replicated buckets), wrapped in
// neither ErrKeyExists nor ErrKeyRevisionMismatch.
func errorsIsKV(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
}
