package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// lease is the value of an instance's key in the leases bucket.
type lease struct {
	Instance string    `json:"instance"`
	Renewed  time.Time `json:"renewed"` // the instance's clock, for operators
}

// leaseView is what this instance knows of every instance's lease, by
// the leases stream's own clock (the Created time of each entry), so clock
// skew between chatd hosts does not matter.
type leaseView struct {
	ttl time.Duration

	mu          sync.Mutex
	self        string
	seen        map[string]time.Time // token(instance) -> created of its newest lease
	ownNow      time.Time            // created of this instance's newest lease seen
	streakStart time.Time            // ownNow when renewals last resumed after a failure
	renewedAt   time.Time            // local time of the last successful renewal
	failed      bool                 // the last renewal failed
}

func newLeaseView(self string, ttl time.Duration) *leaseView {
	return &leaseView{self: self, ttl: ttl, seen: make(map[string]time.Time)}
}

// apply records one entry of the leases bucket.
func (v *leaseView) apply(e jetstream.KeyValueEntry) {
	var l lease
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.seen, e.Key())
		return
	}
	if json.Unmarshal(e.Value(), &l) != nil {
		return
	}
	v.seen[e.Key()] = e.Created()
	if l.Instance == v.self && e.Created().After(v.ownNow) {
		if v.streakStart.IsZero() {
			v.streakStart = e.Created()
		}
		v.ownNow = e.Created()
	}
}

// renewed records the outcome of one renewal.
func (v *leaseView) renewed(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.failed = true
		v.streakStart = time.Time{} // judged again only after a full TTL of renewals
		return
	}
	v.failed = false
	v.renewedAt = time.Now()
}

// sinceRenewed is how long ago the lease was last renewed (forever if never).
func (v *leaseView) sinceRenewed() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.renewedAt.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(v.renewedAt)
}

// judging reports whether this instance may declare others dead: its own
// lease has been renewed without a break for a full TTL, so every live
// instance has had time to renew its own since the last outage.
func (v *leaseView) judging() (now time.Time, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ok = !v.failed && !v.streakStart.IsZero() && v.ownNow.Sub(v.streakStart) >= v.ttl
	return v.ownNow, ok
}

// dead reports whether instance's lease expired by now (the leases
// stream's clock). An instance never seen is dead when seenSince, the time
// its lock was first seen, is a TTL old: a live one would have renewed.
func (v *leaseView) dead(instance string, now, seenSince time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.seen[token(instance)]; ok {
		return now.Sub(last) > v.ttl
	}
	return now.Sub(seenSince) > v.ttl
}

// forget drops what is known of instances silent for longer than the
// leases bucket keeps their entries (their keys are gone there too), so
// the view does not grow with every instance that ever ran.
func (v *leaseView) forget(now time.Time, after time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key, last := range v.seen {
		if now.Sub(last) > after {
			delete(v.seen, key)
		}
	}
}

// lockView mirrors the locks bucket.
type lockView struct {
	mu       sync.Mutex
	locks    map[string]*lockEntry // by key
	reported map[string]time.Time  // key -> lease time of the last Orphaned report
	ownNow   func() time.Time      // the leases' clock; set once by newLockView
}

type lockEntry struct {
	ref       hub.AnswerRef
	rev       uint64
	firstSeen time.Time // lease clock when this revision was first seen
}

// newLockView mirrors the locks, dating each by leases' clock.
func newLockView(leases *leaseView) *lockView {
	return &lockView{locks: make(map[string]*lockEntry), reported: make(map[string]time.Time),
		ownNow: func() time.Time { now, _ := leases.judging(); return now }}
}

func (v *lockView) apply(e jetstream.KeyValueEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.locks, e.Key())
		delete(v.reported, e.Key())
		return
	}
	var ref hub.AnswerRef
	if json.Unmarshal(e.Value(), &ref) != nil {
		return
	}
	first := v.ownNow()
	v.locks[e.Key()] = &lockEntry{ref: ref, rev: e.Revision(), firstSeen: first}
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

// watch feeds every entry of kv (the current values, then each change) to
// apply until ctx ends, starting a new watcher when one fails.
func (b *Bus) watch(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry)) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		w, err := kv.WatchAll(ctx)
		if err != nil {
			b.log.Debug("watch bucket", slog.String("bucket", kv.Bucket()), slog.Any("err", err))
			select {
			case <-ctx.Done():
			case <-time.After(backoff(attempt)):
			}
			continue
		}
		attempt = 0
		for e := range w.Updates() {
			if e != nil {
				apply(e)
			}
		}
		_ = w.Stop()
	}
}

// renewLoop renews the lease every RenewEvery and then reports the locks of
// dead instances to the hub, until ctx ends.
func (b *Bus) renewLoop(ctx context.Context, res *resources) {
	t := time.NewTicker(b.opts.RenewEvery)
	defer t.Stop()
	for {
		b.renew(ctx, res)
		b.reportOrphans()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bus) renew(ctx context.Context, res *resources) {
	val, _ := json.Marshal(lease{Instance: b.id, Renewed: time.Now().UTC()})
	rctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL/2)
	_, err := res.leases.Put(rctx, token(b.id), val)
	cancel()
	if err != nil && ctx.Err() == nil {
		b.log.Warn("renew lease", slog.Any("err", err))
	}
	if ctx.Err() == nil {
		b.lease.renewed(err)
	}
}

func (b *Bus) reportOrphans() {
	now, ok := b.lease.judging()
	h := b.handler()
	if !ok || h == nil || b.conn.err() != nil {
		return
	}
	b.lease.forget(now, leaseBucketAge(b.opts.LeaseTTL))
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
