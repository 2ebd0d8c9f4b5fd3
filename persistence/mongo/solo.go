package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"chatd/persistence"
)

// The single-process lease. A chatd run without a cluster bus (no
// CHATD_NATS_URL) assumes it is the only process on its database: at
// start it marks every answer still streaming as interrupted
// (InterruptStreaming), as left by its own last run. A second such process
// on the same database would interrupt the first one's live answers. So
// that process takes the lease first (TakeSoloLease): one document,
// _id "solo" in the collection leases, naming its holder and an expiry
// that the holder renews every LeaseOptions.Renew; a clean Close deletes
// it. A process that finds the lease held watches it: renewed, it is
// refused with a *HeldError; left unrenewed (its holder crashed), it is
// taken over once expired, after at most the TTL. The cluster mode takes
// no lease: its instances share the database by design (docs/scale.md),
// and each marks its presence instead (presence.go), which refuses a
// start alone beside them.
//
// FerretDB v1 has no transactions and its updates are not atomic, but an
// insert of an _id that exists fails reliably, so a free lease is taken by
// an insert, and only an expired one by an update conditioned on what was
// read (holder token and renewal count), read back to check it stuck. On
// FerretDB two processes taking over the same expired lease at the same
// moment may still both read their own write back (each writes the whole
// document): both then start, and the one whose token is not stored finds
// out at its first renewal, within Renew, and loses the lease (see
// setLost); its start-up sweep may meanwhile have interrupted answers the
// other had just begun. On MongoDB the update is atomic and one of them
// fails.

// Lease defaults; see LeaseOptions.
const (
	DefaultLeaseTTL = 20 * time.Second
	soloLeaseID     = "solo"
	minLeasePoll    = 10 * time.Millisecond
)

// LeaseOptions configures TakeSoloLease.
type LeaseOptions struct {
	// TTL is how long the lease holds without a renewal; it defaults to
	// DefaultLeaseTTL (20 s). A process that crashed holds it that long.
	TTL time.Duration
	// Renew is how often the holder renews the lease; it defaults to a
	// quarter of TTL (5 s). Each renewal is given a quarter of the TTL
	// for an answer: one that gets none failed.
	Renew time.Duration

	now   func() time.Time                                 // tests: the clock (time.Now)
	sleep func(ctx context.Context, d time.Duration) error // tests: take's wait between looks (sleepCtx)
	tick  func(ctx context.Context, d time.Duration) error // tests: the wait between renewals (sleepCtx)
}

func (o LeaseOptions) withDefaults() LeaseOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Renew <= 0 || o.Renew >= o.TTL {
		o.Renew = o.TTL / 4
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	if o.tick == nil {
		o.tick = sleepCtx
	}
	return o
}

// renewBound bounds one renewal of the lease or of a cluster instance's
// presence: a quarter of the TTL (the default Renew), so that several are
// tried before the lease expires, whatever Renew. Without it, a renewal
// sent on a connection to a host that died waits until TCP gives up
// (minutes) while the lease expires unseen.
func (o LeaseOptions) renewBound() time.Duration {
	return o.TTL / 4
}

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HeldError is the refusal of TakeSoloLease, and the cause of a lease
// lost: another process holds the lease.
type HeldError struct {
	Host    string    // the holder's host name
	PID     int       // the holder's process id on Host
	Since   time.Time // when it took the lease
	Expires time.Time // until when it holds it, unless renewed (the holder's clock)
}

// Error names the holder; it says nothing of what to do, which is the
// caller's to say.
func (e *HeldError) Error() string {
	return fmt.Sprintf("the database is in use by another chatd process running alone (pid %d on host %s, which took its lease at %s and renews it while it runs)",
		e.PID, e.Host, e.Since.UTC().Format(time.RFC3339))
}

// leaseDoc is the lease as stored.
type leaseDoc struct {
	ID      string    `bson:"_id"`
	Token   string    `bson:"token"` // random, per take: a renewal or release changes only its own
	Host    string    `bson:"host"`
	PID     int       `bson:"pid"`
	Since   time.Time `bson:"since"`
	Expires time.Time `bson:"expires"`
	TTLMS   int64     `bson:"ttl_ms"`   // the holder's TTL
	RenewMS int64     `bson:"renew_ms"` // the holder's renewal interval
	Beat    int64     `bson:"beat"`     // renewals since taken: a watcher sees the holder live
}

func (d leaseDoc) held() *HeldError {
	return &HeldError{Host: d.Host, PID: d.PID, Since: d.Since, Expires: d.Expires}
}

// renewEvery is the holder's renewal interval (at least minLeasePoll).
func (d leaseDoc) renewEvery() time.Duration {
	return max(time.Duration(d.RenewMS)*time.Millisecond, minLeasePoll)
}

// soloLease is the lease this process holds.
type soloLease struct {
	coll *mongo.Collection
	opts LeaseOptions
	log  *slog.Logger
	mine leaseDoc // this take: its token, this process's identity, when taken

	stop context.CancelFunc
	done chan struct{} // closed when the keeper has ended

	mu     sync.Mutex
	lost   error     // set once the lease is lost for good (a *HeldError, or its absence)
	until  time.Time // the expiry the last renewal that succeeded stored
	lapsed bool      // until passed and the keeper said so (logged once per lapse)
}

// TakeSoloLease takes the single-process lease for this store (see the
// comment at the top of solo.go), before the start-up sweep of a process
// running without a cluster. A free lease is taken at once. One held by
// another process is watched: when its holder renews it, TakeSoloLease
// returns a *HeldError naming it (within two of its renewal intervals);
// when the holder does not renew it (it crashed), the lease is taken over
// once expired (see dead), so a restart after a crash waits up to the
// TTL, and says so in the log. ctx bounds the wait. Once taken, the lease
// is renewed every Renew until Close releases it. If another process
// takes it meanwhile (this one paused, or could not reach the database,
// for longer than TTL), this one logs an error and from then on fails
// Ping (so /readyz) and InterruptStreaming, until it is restarted: it no
// longer runs alone. Each renewal is bounded (renewBound); while the lease
// has expired unrenewed (the database did not answer), Ping and
// InterruptStreaming fail too (persistence.ErrLeaseLost), until a renewal
// gets through: it then holds again, or is found taken. Once taken, while
// a cluster instance's presence has not expired (presence.go), the lease
// is released and TakeSoloLease returns a *ClusterError naming the
// instance. Call it at most once.
func (s *Store) TakeSoloLease(ctx context.Context, opts LeaseOptions) error {
	opts = opts.withDefaults()
	host, _ := os.Hostname()
	l := &soloLease{coll: s.leases, opts: opts, log: s.log, done: make(chan struct{}),
		mine: leaseDoc{ID: soloLeaseID, Token: leaseToken(), Host: host, PID: os.Getpid(),
			TTLMS: opts.TTL.Milliseconds(), RenewMS: opts.Renew.Milliseconds()}}
	if err := l.take(ctx); err != nil {
		return err
	}
	l.until = l.mine.Expires
	if err := clusterPresent(ctx, l.coll, opts.now()); err != nil { // after the take: see presence.go
		_, derr := l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}, {Key: "token", Value: l.mine.Token}})
		if derr != nil {
			return errors.Join(err, fmt.Errorf("release the single-process lease: %w", derr))
		}
		return err
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	go func() {
		defer close(l.done)
		l.keep(kctx)
	}()
	s.lease.Store(l)
	s.log.Info("took the single-process lease on the database", slog.String("ttl", opts.TTL.String()))
	return nil
}

// leaseToken is a random token naming one take of the lease.
func leaseToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// take takes the lease: inserts it if absent, else watches the holder's
// renewals until it is seen live (a *HeldError) or dead and expired
// (taken over).
func (l *soloLease) take(ctx context.Context) error {
	var first *leaseDoc // the lease as first seen held
	var since time.Time // when it was first seen
	for {
		now := l.opts.now()
		mine := l.mine
		mine.Since, mine.Expires = now, now.Add(l.opts.TTL)
		_, err := l.coll.InsertOne(ctx, mine)
		if err == nil {
			l.mine = mine
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("take the single-process lease: %w", err)
		}
		var held leaseDoc
		err = l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}}).Decode(&held)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("read the single-process lease: %w", err)
		}
		now = l.opts.now()
		if first != nil && (held.Token != first.Token || held.Beat != first.Beat) {
			return held.held() // renewed, or taken by another: live
		}
		if first != nil && l.dead(held, now.Sub(since), now) {
			took, err := l.takeOver(ctx, held, now)
			if err != nil || took {
				return err
			}
			first = nil // another took it first: watch the new holder
			continue
		}
		if first == nil {
			first, since = &held, now
			l.log.Warn("the single-process lease on the database is held by another chatd: waiting for it to renew the lease (it runs: this start is refused) or to let it expire (it stopped: this process takes it over)",
				slog.String("holder_host", held.Host), slog.Int("holder_pid", held.PID),
				slog.Time("expires", held.Expires), slog.String("at_most", time.Duration(held.TTLMS*int64(time.Millisecond)).String()))
		}
		if err := l.opts.sleep(ctx, held.renewEvery()/2); err != nil {
			return fmt.Errorf("wait for the single-process lease held by pid %d on host %s: %w", held.PID, held.Host, err)
		}
	}
}

// dead reports whether the holder of held stopped renewing it, having
// been watched unchanged for watched: for a whole TTL, or for two of its
// renewal intervals once it expired by this host's clock. A live holder
// renews within one interval, so it is never judged dead, whatever the
// skew between the hosts' clocks; the skew only changes how long a start
// after a crash waits (at most the TTL). The lease is not taken without
// that wait, even when it expired long ago: an expiry read from another
// host's clock proves nothing.
func (l *soloLease) dead(held leaseDoc, watched time.Duration, now time.Time) bool {
	ttl := max(time.Duration(held.TTLMS)*time.Millisecond, minLeasePoll)
	return watched >= ttl || watched >= 2*held.renewEvery() && !now.Before(held.Expires)
}

// takeOver replaces held, unchanged since read, with this process's
// lease, and reads it back (see the FerretDB note at the top of solo.go);
// took is false when another process changed it first.
func (l *soloLease) takeOver(ctx context.Context, held leaseDoc, now time.Time) (took bool, err error) {
	mine := l.mine
	mine.Since, mine.Expires = now, now.Add(l.opts.TTL)
	filter := bson.D{{Key: "_id", Value: soloLeaseID}, {Key: "token", Value: held.Token}, {Key: "beat", Value: held.Beat}}
	res, err := l.coll.ReplaceOne(ctx, filter, mine)
	if err != nil {
		return false, fmt.Errorf("take over the expired single-process lease: %w", err)
	}
	if res.MatchedCount == 0 {
		return false, nil
	}
	var back leaseDoc
	if err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}}).Decode(&back); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return false, fmt.Errorf("read back the single-process lease: %w", err)
	}
	if back.Token != mine.Token {
		return false, nil
	}
	l.mine = mine
	l.log.Warn("took over the single-process lease of a chatd that stopped renewing it (it crashed, or was killed)",
		slog.String("holder_host", held.Host), slog.Int("holder_pid", held.PID), slog.Time("expired", held.Expires))
	return true, nil
}

// keep renews the lease every Renew, each renewal bounded by renewBound,
// until ctx ends or the lease is lost.
func (l *soloLease) keep(ctx context.Context) {
	for l.opts.tick(ctx, l.opts.Renew) == nil {
		rctx, cancel := context.WithTimeout(ctx, l.opts.renewBound())
		expires, err := l.renew(rctx)
		cancel()
		if !l.renewed(ctx, expires, err) {
			return
		}
	}
}

// renewed records the outcome of a renewal that stored expires, or failed
// with err; it returns false once the lease is lost for good.
func (l *soloLease) renewed(ctx context.Context, expires time.Time, err error) bool {
	var held *HeldError
	switch {
	case err == nil:
		l.extend(expires)
	case errors.As(err, &held) || errors.Is(err, errLeaseGone):
		l.setLost(err)
		return false
	case ctx.Err() == nil:
		l.log.Warn("could not renew the single-process lease on the database: trying again",
			slog.Any("err", err), slog.String("every", l.opts.Renew.String()))
		l.noteLapse()
	}
	return true
}

// extend records a renewal that stored expires; a lease that had lapsed
// holds again (nobody took it meanwhile, or the renewal would have failed).
func (l *soloLease) extend(expires time.Time) {
	l.mu.Lock()
	l.until = expires
	was := l.lapsed
	l.lapsed = false
	l.mu.Unlock()
	if was {
		l.log.Warn("renewed the single-process lease on the database after it had expired: nobody took it meanwhile, /readyz answers again")
	}
}

// noteLapse says, once per lapse, that the lease expired unrenewed.
func (l *soloLease) noteLapse() {
	l.mu.Lock()
	first := !l.lapsed && !l.opts.now().Before(l.until)
	l.lapsed = l.lapsed || first
	until := l.until
	l.mu.Unlock()
	if first {
		l.log.Error("the single-process lease on the database expired unrenewed (the database did not answer its renewals for the lease's TTL): another chatd may take it and interrupt this one's answers. /readyz fails until a renewal succeeds, or finds the lease taken",
			slog.Time("expired", until))
	}
}

// errLeaseGone is a lease lost because its document was deleted.
var errLeaseGone = errors.New("the single-process lease was deleted from the database")

// renew extends the lease by TTL from now, and returns the expiry stored.
// It returns a *HeldError when another process holds it, errLeaseGone
// when nobody does, and other errors (the database not answering within
// ctx) as they are: the next renewal tries again, and a lease that expired
// meanwhile is still renewed if nobody took it.
func (l *soloLease) renew(ctx context.Context) (time.Time, error) {
	expires := l.opts.now().Add(l.opts.TTL)
	res, err := l.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: soloLeaseID}, {Key: "token", Value: l.mine.Token}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: expires}}}, {Key: "$inc", Value: bson.D{{Key: "beat", Value: 1}}}})
	if err != nil {
		return time.Time{}, fmt.Errorf("renew the single-process lease: %w", err)
	}
	if res.MatchedCount == 1 {
		return expires, nil
	}
	var held leaseDoc
	err = l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}}).Decode(&held)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return time.Time{}, errLeaseGone
	case err != nil:
		return time.Time{}, fmt.Errorf("read the single-process lease: %w", err)
	case held.Token == l.mine.Token: // a race with the read: ours after all
		return held.Expires, nil
	}
	return time.Time{}, held.held()
}

// setLost records the lease as lost and says so.
func (l *soloLease) setLost(cause error) {
	l.mu.Lock()
	l.lost = fmt.Errorf("%w: %w", persistence.ErrLeaseLost, cause)
	l.mu.Unlock()
	l.log.Error("another chatd took this process's single-process lease on the database (this one paused, or was cut off from the database, for longer than the lease's TTL): the two may interrupt each other's answers. /readyz now fails; stop one of them and restart this one, or run both as a cluster with CHATD_NATS_URL (docs/scale.md)",
		slog.Any("err", cause))
}

// err is why the lease no longer holds, or nil: lost for good, or expired
// since the last renewal that succeeded (until one succeeds again).
func (l *soloLease) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if now := l.opts.now(); !now.Before(l.until) {
		return fmt.Errorf("%w: %w at %s", persistence.ErrLeaseLost, persistence.ErrLeaseLapsed, l.until.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// lostForGood is the lease lost to another process, or nil.
func (l *soloLease) lostForGood() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// release stops the renewals and deletes the lease if it is still this
// process's, within ctx.
func (l *soloLease) release(ctx context.Context) error {
	l.stop()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("release the single-process lease: %w", ctx.Err())
	}
	if l.lostForGood() != nil {
		return nil
	}
	if _, err := l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}, {Key: "token", Value: l.mine.Token}}); err != nil {
		return fmt.Errorf("release the single-process lease: %w", err)
	}
	return nil
}

// soloErr is why this store, which took the single-process lease, may no
// longer act as the database's only process; nil while it holds the lease
// or never took it.
func (s *Store) soloErr() error {
	if l := s.lease.Load(); l != nil {
		return l.err()
	}
	return nil
}

// releaseLease releases the lease, if taken, on Close.
func (s *Store) releaseLease(ctx context.Context) error {
	if l := s.lease.Load(); l != nil {
		return l.release(ctx)
	}
	return nil
}
