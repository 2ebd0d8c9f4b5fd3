package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/transport/limits"
)

// Limits holds per-user limits for the whole cluster (limits.Shared) in
// the buckets chatd_conns and chatd_sends. Every change is a
// compare-and-swap on the user's key, so parallel requests on several
// instances never pass a limit together. Connection counts are kept per
// instance and those of instances whose lease expired are dropped (at
// the user's next update, or by the sweep of the bucket, connsSweep), so
// a crashed instance's connections do not stay counted. Each instance
// writes its own count from what it holds (connTally), never as a
// relative change, so an update that failed or whose reply was lost
// (NATS down, a timeout) is set right by the next one, or by the
// repair that runs with each lease renewal. An instance whose lease
// comes back after a gap longer than its TTL (a split from NATS, a
// pause) writes every user's count again, as the others may have
// dropped them meanwhile.
type Limits struct{ b *Bus }

var _ limits.Shared = (*Limits)(nil)

// Limits returns the cluster-wide limits over this bus.
func (b *Bus) Limits() *Limits { return &Limits{b: b} }

// casRetries bounds the compare-and-swap attempts of one limit update
// (a user's tabs reconnecting together after a restart contend on one key).
const casRetries = 30

// conflictWait is how long casLoop waits after its conflicts-th lost
// compare-and-swap: a random moment, so that the contenders spread out,
// below a bound that starts at 2 ms and doubles every five conflicts (64
// ms from the 26th; about 0.3 s over all 30 on average). A conflict is
// not always another contender's win: the stream's leader also refuses a
// write with an expected revision while another write to the key is in
// process, and reads what it has applied so far until that write lands
// (see lockRetries), which on a loaded machine can take longer than a
// burst of short waits.
func conflictWait(conflicts int) time.Duration {
	bound := 2 * time.Millisecond << min(conflicts/5, 5)
	return time.Duration(rand.Int64N(int64(bound)))
}

// connCounts is the value of a user's key in chatd_conns: open
// connections per instance.
type connCounts map[string]int

// AcquireConn implements limits.Shared. When it returns an error the
// caller admits the connection anyway (an outage of the bus must not lock
// users out) and releases it later, so it is counted here as open and
// written to the cluster's count once the bus answers again.
func (l *Limits) AcquireConn(ctx context.Context, userID string, max int) (bool, error) {
	u, err := l.b.tally.turn(ctx, userID)
	if err != nil {
		l.b.tally.blind(userID, +1)
		return false, l.b.limitResult(err)
	}
	ok := false
	err = l.setOwn(ctx, userID, func(others int) int {
		if ok = others+u.open < max; ok {
			return u.open + 1
		}
		return u.open
	})
	if ok || err != nil {
		u.open++
	}
	l.b.tally.done(userID, u, err != nil)
	return ok, l.b.limitResult(err)
}

// ReleaseConn implements limits.Shared.
func (l *Limits) ReleaseConn(ctx context.Context, userID string) error {
	u, err := l.b.tally.turn(ctx, userID)
	if err != nil {
		l.b.tally.blind(userID, -1)
		return l.b.limitResult(err)
	}
	u.open = max(0, u.open-1)
	err = l.setOwn(ctx, userID, func(int) int { return u.open })
	l.b.tally.done(userID, u, err != nil)
	return l.b.limitResult(err)
}

// repairLoop repairs the connection counts every RenewEvery until ctx
// ends, and binds the windows bucket while it could not be (Windows).
func (l *Limits) repairLoop(ctx context.Context) {
	t := time.NewTicker(l.b.opts.RenewEvery)
	defer t.Stop()
	rejoins := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The others may have judged this instance dead and dropped its
		// counts (see leaseView.seenAgain): every user's is written again.
		if n := l.b.lease.rejoinCount(); n != rejoins {
			rejoins = n
			l.b.tally.allLost()
		}
		l.repairConns(ctx)
		if hook := l.b.repairHook.Load(); hook != nil {
			(*hook)()
		}
		// Bounded by half a period: a NATS user denied the bucket would
		// otherwise hold the loop for a provisioning step (5 s) at each
		// turn, delaying the next repair of the connection counts.
		wctx, cancel := context.WithTimeout(ctx, l.b.opts.RenewEvery/2)
		l.b.Windows().ensure(wctx)
		cancel()
	}
}

// repairConns writes this instance's count of every user whose last
// update failed; a user whose entry another update holds meanwhile is
// left to that update. A repair that fails counts in LimitFailures.
func (l *Limits) repairConns(ctx context.Context) {
	if l.b.usable() != nil {
		return
	}
	for _, userID := range l.b.tally.dirtyUsers() {
		if u, ok := l.b.tally.tryTurn(userID); ok {
			err := l.b.limitResult(l.setOwn(ctx, userID, func(int) int { return u.open }))
			l.b.tally.done(userID, u, err != nil)
		}
	}
}

// setOwn writes this instance's entry in the user's counts (without the
// counts of dead instances) as own returns it, given the other live
// instances' total. It writes only what changes the key (a refused
// connection writes only to set a stale entry right). An entry it cannot
// read (written by hand, or by something other than chatd) is replaced
// by this instance's count alone, and logged: the bucket keeps an entry
// until it is changed, so the user's limit failed at every connection,
// for good. The other instances' counts come back as each writes its
// own, at the user's next connection opened or closed there.
func (l *Limits) setOwn(ctx context.Context, userID string, own func(others int) int) error {
	key := token(userID)
	var unreadable error
	err := l.b.updateKey(ctx, func(r *resources) jetstream.KeyValue { return r.conns }, key, func(val []byte) ([]byte, bool, error) {
		c, err := decodeConnCounts(val)
		if unreadable = err; err != nil {
			c = connCounts{}
		}
		rewrite := l.pruneDead(c) || unreadable != nil
		others := 0
		for inst, n := range c {
			if inst != l.b.id {
				others += n
			}
		}
		n := own(others)
		if c[l.b.id] == n && !rewrite {
			return nil, false, nil
		}
		if n == 0 {
			delete(c, l.b.id)
		} else {
			c[l.b.id] = n
		}
		if len(c) == 0 {
			return nil, true, nil // delete the key
		}
		out, err := json.Marshal(c)
		return out, true, err
	})
	if err == nil && unreadable != nil {
		l.b.log.Warn("unreadable value in the conns bucket; replaced by this instance's count of the user's connections (the other instances' come back with their next change)",
			slog.String("key", key), slog.Any("err", unreadable))
	}
	return err
}

// decodeConnCounts decodes a user's entry in chatd_conns (nil: none). A
// value that is not an object of counts, or that holds a negative count
// (which would lift the user's limit everywhere), is an error.
func decodeConnCounts(val []byte) (connCounts, error) {
	c := connCounts{}
	if val == nil {
		return c, nil
	}
	if err := json.Unmarshal(val, &c); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("null counts")
	}
	for inst, n := range c {
		if n < 0 {
			return nil, fmt.Errorf("negative count %d of instance %q", n, inst)
		}
	}
	return c, nil
}

// pruneDead drops the counts of instances whose lease expired, or that
// have shown no lease for a TTL since their count was first seen here
// (one just started writes counts before its lease reaches this
// instance); it does nothing until this instance may judge leases (see
// leaseView.judging).
func (l *Limits) pruneDead(c connCounts) bool {
	now, ok := l.b.lease.judging()
	if !ok {
		return false
	}
	pruned := false
	for inst := range c {
		if inst != l.b.id && l.b.lease.deadHolder(inst, now) {
			delete(c, inst)
			pruned = true
		}
	}
	return pruned
}

// sendBucket is the value of a user's key in chatd_sends: a token bucket.
type sendBucket struct {
	Tokens float64   `json:"tokens"`
	Last   time.Time `json:"last"`
}

// TakeSend implements limits.Shared: a token bucket refilled at
// perMinute/60 per second up to perMinute/4 (at least 1).
func (l *Limits) TakeSend(ctx context.Context, userID string, perMinute int) (bool, error) {
	_, ok, err := l.takeToken(ctx, token(userID), perMinute, max(1, float64(perMinute)/4))
	return ok, l.b.limitResult(err)
}

// TakeBudget implements limits.Shared: a token bucket refilled at
// perMinute/60 per second up to perMinute, under a key of its own per
// budget and user in chatd_sends.
func (l *Limits) TakeBudget(ctx context.Context, budget, userID string, perMinute int) (time.Duration, bool, error) {
	wait, ok, err := l.takeToken(ctx, token(budget+":"+userID), perMinute, max(1, float64(perMinute)))
	return wait, ok, l.b.limitResult(err)
}

// sendsAge is how long a key of chatd_sends lives after its last write.
const sendsAge = time.Minute

// takeToken spends one token of the bucket under key in chatd_sends,
// refilled at perMinute/60 per second up to burst, or says how long until
// there is one.
func (l *Limits) takeToken(ctx context.Context, key string, perMinute int, burst float64) (time.Duration, bool, error) {
	rate := float64(perMinute) / 60
	ok := false
	var wait time.Duration
	err := l.b.updateKey(ctx, func(r *resources) jetstream.KeyValue { return r.sends }, key, func(val []byte) ([]byte, bool, error) {
		now, known := l.b.lease.natsNow()
		if !known {
			return nil, false, errNoNATSTime
		}
		s, err := refilled(val, now, rate, burst)
		if err != nil {
			return nil, false, err
		}
		if ok = s.Tokens >= 1; !ok {
			wait = time.Duration((1 - s.Tokens) / rate * float64(time.Second))
			return nil, false, nil
		}
		s.Tokens--
		out, err := json.Marshal(s)
		return out, true, err
	})
	return wait, ok, err
}

// refilled decodes a bucket of chatd_sends (nil: a full one) and adds the
// tokens earned up to now, the NATS servers' time as this instance
// estimates it (natsNow), which Last is written in too: the hosts'
// clocks may be minutes apart, the estimates only by a round trip.
func refilled(val []byte, now time.Time, rate, burst float64) (sendBucket, error) {
	s := sendBucket{Tokens: burst, Last: now}
	if val == nil {
		return s, nil
	}
	if err := json.Unmarshal(val, &s); err != nil {
		return s, fmt.Errorf("decode send bucket: %w", err)
	}
	// Last never goes back: an instance whose estimate is behind the
	// one that wrote it adds nothing and leaves it, so that the
	// refill counts each moment once, whichever instances the
	// requests alternate between (taken back, every difference was
	// refilled again by the next take on the one ahead). Only a
	// Last further ahead than a key of the bucket lives unwritten
	// (sendsAge) comes from a clock far off (a version that wrote
	// its host's time): it is taken back to now, else this instance
	// would refill nothing until its own time reached it (or the key
	// expired after its last take).
	switch {
	case s.Last.Sub(now) > sendsAge:
		s.Last = now
	case now.After(s.Last):
		s.Tokens = min(burst, s.Tokens+now.Sub(s.Last).Seconds()*rate)
		s.Last = now
	}
	return s, nil
}

// updateKey runs casLoop on key of the bucket pick chooses, once the bus
// is usable, bounded by opTimeout.
func (b *Bus) updateKey(ctx context.Context, pick func(*resources) jetstream.KeyValue, key string,
	change func(val []byte) (out []byte, write bool, err error),
) error {
	if err := b.usable(); err != nil {
		return err
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	return b.casLoop(ctx, pick(b.res.Load()), key, change)
}

// casLoop reads key, calls change with its value (nil when absent) and
// writes the result back only if the key did not change meanwhile,
// retrying on conflicts. change returns write=false to leave the key
// alone, and a nil value with write=true to delete it. A read or write
// that found no stream leader to answer it (the bucket's stream electing
// one: just created, or a NATS node lost) reached nothing and is retried
// after a backoff until ctx ends.
func (b *Bus) casLoop(ctx context.Context, kv jetstream.KeyValue, key string,
	change func(val []byte) (out []byte, write bool, err error),
) error {
	leaderless := 0
	// again waits before sending a request no leader received again; false
	// once ctx ended first.
	again := func() bool {
		wait(ctx, backoff(leaderless))
		leaderless++
		return ctx.Err() == nil
	}
	for conflicts := 0; conflicts < casRetries; {
		var val []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			val, rev = e.Value(), e.Revision()
		case noLeader(err) && again():
			continue
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return unavailable("read limit "+key, err)
		}
		out, write, err := change(val)
		if err != nil || !write {
			return err
		}
		switch {
		case out == nil && rev == 0:
			return nil
		case out == nil:
			err = b.removeKey(ctx, kv, key, rev)
		case rev == 0:
			_, err = kv.Create(ctx, key, out)
		default:
			_, err = kv.Update(ctx, key, out, rev)
		}
		switch {
		case err == nil:
			return nil
		case noLeader(err) && again():
			continue
		case !errorsIsKV(err):
			return unavailable("write limit "+key, err)
		}
		// Lost the race, or the key's last write is still in process.
		if wait(ctx, conflictWait(conflicts)); ctx.Err() != nil {
			return unavailable("update limit "+key, ctx.Err())
		}
		conflicts++
	}
	return unavailable("update limit "+key, errors.New("too many concurrent updates"))
}

// noLeader reports an error of a request no stream leader received: no
// responders, so nothing was applied and it can be sent again.
func noLeader(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}
