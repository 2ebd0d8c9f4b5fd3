package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The cluster's presence. The instances of a cluster (CHATD_NATS_URL set)
// share the database by design, and keep their own liveness on NATS; but a
// chatd started alone beside them would, at start, end every answer they
// stream (its start-up sweep, InterruptStreaming), and a cluster started
// beside a chatd running alone would have its answers ended by that one's
// next start. So each cluster instance marks its presence in the leases
// collection (MarkClusterPresence): one document per instance, _id
// "cluster:<instance id>", kind "cluster", with an expiry it renews on the
// single-process lease's cadence (LeaseOptions) and deletes on a clean
// Close; one left by a crash expires after the TTL. A start alone is
// refused while a presence has not expired (a *ClusterError, from
// TakeSoloLease); a cluster start is refused while the single-process
// lease has not expired (a *HeldError). Expiries are compared with the
// reader's clock: hosts whose clocks differ by more than the TTL (20 s)
// may take a live mark for an expired one.
//
// Order: each side writes its own mark first (the lease, or the presence)
// and only then reads the other's, and withdraws its mark when refused.
// Each write is acknowledged before the read is sent, and both go to the
// primary, so of two starts at the same moment at least one sees the
// other: one or both are refused, never neither (both refused, each is
// started again, as a restart loop does). FerretDB commits each command
// before answering it, so this holds there too; what its non-atomic
// updates still allow is the take-over race of two processes started
// alone (see solo.go), not a start alone beside a cluster. A process
// alone that paused for longer than the TTL may find a cluster started
// meanwhile: it renews its lease and runs on beside it (its sweep ran at
// its start), but its next start is refused.

// clusterKind is the kind of a cluster instance's presence document.
const clusterKind = "cluster"

// ClusterError is the refusal of TakeSoloLease when a cluster uses the
// database: it names one of its instances.
type ClusterError struct {
	Instance string    // the instance's id (CHATD_INSTANCE_ID-<hex>)
	Host     string    // its host name
	PID      int       // its process id on Host
	Expires  time.Time // until when its presence holds, unless renewed (its clock)
}

// Error names the instance; what to do is the caller's to say.
func (e *ClusterError) Error() string {
	return fmt.Sprintf("the database is in use by a chatd cluster (instance %s, pid %d on host %s, which marks its presence while it runs)",
		e.Instance, e.PID, e.Host)
}

// presenceDoc is a cluster instance's presence as stored.
type presenceDoc struct {
	ID       string    `bson:"_id"` // "cluster:" + Instance
	Kind     string    `bson:"kind"`
	Instance string    `bson:"instance"`
	Host     string    `bson:"host"`
	PID      int       `bson:"pid"`
	Since    time.Time `bson:"since"`
	Expires  time.Time `bson:"expires"`
}

// clusterPresence is the presence this process keeps.
type clusterPresence struct {
	coll *mongo.Collection
	opts LeaseOptions
	log  *slog.Logger
	mine presenceDoc

	stop context.CancelFunc
	done chan struct{} // closed when the keeper has ended
}

// MarkClusterPresence marks this process, cluster instance instance, as
// using the database (see the comment at the top of presence.go), before
// its start-up work. It returns a *HeldError, having withdrawn its mark,
// while a process alone holds the single-process lease unexpired. Once
// marked, the presence is renewed every opts.Renew until Close deletes
// it; a renewal that fails (the database does not answer) is logged and
// tried again at the next, and never stops the instance. Call it at most
// once.
func (s *Store) MarkClusterPresence(ctx context.Context, instance string, opts LeaseOptions) error {
	opts = opts.withDefaults()
	host, _ := os.Hostname()
	now := opts.now()
	p := &clusterPresence{coll: s.leases, opts: opts, log: s.log, done: make(chan struct{}),
		mine: presenceDoc{ID: clusterKind + ":" + instance, Kind: clusterKind, Instance: instance,
			Host: host, PID: os.Getpid(), Since: now}}
	if err := p.mark(ctx); err != nil {
		return err
	}
	var solo leaseDoc
	err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}}).Decode(&solo)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return errors.Join(fmt.Errorf("read the single-process lease: %w", err), p.unmark(ctx))
	case opts.now().Before(solo.Expires):
		if err := p.unmark(ctx); err != nil {
			return errors.Join(solo.held(), err)
		}
		return solo.held()
	}
	p.prune(ctx)
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = stop
	go func() {
		defer close(p.done)
		p.keep(kctx)
	}()
	s.presence.Store(p)
	return nil
}

// presenceKeep is how long past its expiry a presence document stays
// before a starting instance deletes it: instance ids change at every
// start, so each crash would otherwise leave one for good.
const presenceKeep = time.Hour

// prune deletes the presences that expired more than presenceKeep ago
// (crashed instances'); a failure is logged, the next start tries again.
func (p *clusterPresence) prune(ctx context.Context) {
	res, err := p.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: clusterKind},
		{Key: "expires", Value: bson.D{{Key: "$lt", Value: p.opts.now().Add(-presenceKeep)}}}})
	switch {
	case err != nil:
		p.log.Warn("deleting the presences of cluster instances gone for an hour failed; the next start tries again", "err", err)
	case res.DeletedCount > 0:
		p.log.Info("presences of cluster instances gone for an hour deleted", "count", res.DeletedCount)
	}
}

// mark writes the presence, expiring TTL from now.
func (p *clusterPresence) mark(ctx context.Context) error {
	doc := p.mine
	doc.Expires = p.opts.now().Add(p.opts.TTL)
	_, err := p.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mark this cluster instance's presence on the database: %w", err)
	}
	return nil
}

// unmark deletes the presence.
func (p *clusterPresence) unmark(ctx context.Context) error {
	if _, err := p.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.mine.ID}}); err != nil {
		return fmt.Errorf("delete this cluster instance's presence on the database: %w", err)
	}
	return nil
}

// keep renews the presence every Renew, each renewal bounded by
// renewBound, until ctx ends.
func (p *clusterPresence) keep(ctx context.Context) {
	for p.opts.tick(ctx, p.opts.Renew) == nil {
		rctx, cancel := context.WithTimeout(ctx, p.opts.renewBound())
		err := p.mark(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			p.log.Warn("could not renew this cluster instance's presence on the database: trying again",
				slog.Any("err", err), slog.String("every", p.opts.Renew.String()))
		}
	}
}

// release stops the renewals and deletes the presence, within ctx.
func (p *clusterPresence) release(ctx context.Context) error {
	p.stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("release this cluster instance's presence: %w", ctx.Err())
	}
	return p.unmark(ctx)
}

// clusterPresent is a cluster instance's presence unexpired at now, as a
// *ClusterError, or nil when there is none.
func clusterPresent(ctx context.Context, coll *mongo.Collection, now time.Time) error {
	var d presenceDoc
	err := coll.FindOne(ctx, bson.D{{Key: "kind", Value: clusterKind}, {Key: "expires", Value: bson.D{{Key: "$gt", Value: now}}}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil
	case err != nil:
		return fmt.Errorf("read the cluster's presence on the database: %w", err)
	}
	return &ClusterError{Instance: d.Instance, Host: d.Host, PID: d.PID, Expires: d.Expires}
}

// releasePresence releases the presence, if marked, on Close.
func (s *Store) releasePresence(ctx context.Context) error {
	if p := s.presence.Load(); p != nil {
		return p.release(ctx)
	}
	return nil
}
