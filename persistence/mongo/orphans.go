package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// sweptID is the _id of the meta document recording that sweepOrphans
// has run to its end on this database.
const sweptID = "orphans_swept"

// cleanUpWork is what Open found left to clean up.
type cleanUpWork struct {
	deletions bool // cut-off deletions: a marked user or conversation, or a deletion record
	textIndex bool // the text index is missing on messages that hold documents (textIndexNow)
	sweep     bool // sweepOrphans has never run to its end here
	split     bool // fillSplitWords has never run to its end here
}

// none reports whether there is nothing to do.
func (w cleanUpWork) none() bool { return !w.deletions && !w.textIndex && !w.sweep && !w.split }

// cleanUpToDo reads, during Open, what cleanUp has to do: small reads
// (an indexed one of users and one of conversations, three of the meta
// collection). A fresh
// database (no chatd schema before this Open) holds nothing a deleted user
// left and no message without split words: its sweep and fill are
// recorded as done at once. So a new database never
// starts the start-up work, whose commands would mix with a test's.
func (s *Store) cleanUpToDo(ctx context.Context, fresh bool) (cleanUpWork, error) {
	var w cleanUpWork
	marked, err := s.markedUsers(ctx, now().Add(-s.deletionGrace), 1)
	if err != nil {
		return w, err
	}
	records, err := s.deletionRecords(ctx)
	if err != nil {
		return w, err
	}
	convs, err := s.markedConversations(ctx, 1)
	if err != nil {
		return w, err
	}
	w.deletions = len(marked) > 0 || len(records) > 0 || len(convs) > 0
	if w.split, err = s.splitFillNeeded(ctx, fresh); err != nil {
		return w, err
	}
	switch err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: sweptID}}).Err(); {
	case errors.Is(err, mongo.ErrNoDocuments) && fresh:
		return w, s.recordSwept(ctx)
	case errors.Is(err, mongo.ErrNoDocuments):
		w.sweep = true
	case err != nil:
		return w, fmt.Errorf("read the clean-up's state: %w", err)
	}
	return w, nil
}

// recordSwept records that sweepOrphans has run to its end.
func (s *Store) recordSwept(ctx context.Context) error {
	if err := s.upsertMeta(ctx, sweptID, bson.D{{Key: "at", Value: now()}}); err != nil {
		return fmt.Errorf("record the sweep: %w", err)
	}
	return nil
}

// cleanUp does work in the background from Open until Close stops it:
// first what Open found (w): it finishes the account and conversation deletions that were
// cut off (FinishDeletions, batch after batch), builds the text index
// (ensureTextIndex; searches use it from then on), then, once per
// database, deletes what deleted users left (sweepOrphans) and fills the
// split words of the first release's messages (fillSplitWords). None of them
// holds up the start, which must fit in the connect timeout: the index
// reads every message, and so does the sweep, with the conversations. Then, every DeletionSweep (never when negative), it
// looks again for cut-off deletions: a DeleteUser or DeleteConversation
// stopped by its time limit, or by the end of another server sharing the
// database. A failure
// is logged; the next round tries again.
func (s *Store) cleanUp(ctx context.Context, w cleanUpWork, opts Options) {
	if w.deletions {
		_, _ = s.finishAllDeletions(ctx) // logged
	}
	if w.textIndex {
		s.buildTextIndex(ctx)
	}
	if w.sweep {
		s.sweepOnce(ctx)
	}
	if w.split {
		s.fillSplitWordsOnce(ctx)
	}
	close(s.startedUp)
	if opts.DeletionSweep <= 0 {
		return
	}
	persistence.SweepDeletions(ctx, s, deletionBatch, opts.DeletionSweep, s.deletionLog(), opts.afterSweep)
}

// finishAllDeletions finishes every cut-off account or conversation deletion it finds
// (persistence.FinishAllDeletions), logging a failure.
func (s *Store) finishAllDeletions(ctx context.Context) (int, error) {
	return persistence.FinishAllDeletions(ctx, s, deletionBatch, s.deletionLog())
}

// deletionLog is the log of the deletions' sweep, naming the store.
func (s *Store) deletionLog() *slog.Logger { return s.log.With("component", "mongodb") }

// sweepOnce runs sweepOrphans and records that it ran to its end.
func (s *Store) sweepOnce(ctx context.Context) {
	warn := func(what string, err error) {
		if ctx.Err() == nil {
			s.log.Warn("mongodb: "+what+" failed; the next start tries again", "err", err)
		}
	}
	start := time.Now()
	if err := s.sweepOrphans(ctx); err != nil {
		warn("deleting what deleted users left", err)
		return
	}
	if err := s.recordSwept(ctx); err != nil {
		warn("recording the clean-up", err)
		return
	}
	s.log.Info("mongodb: checked every conversation and message for a deleted owner", "took", time.Since(start).Round(time.Millisecond).String())
}

// deletionBatch bounds how many marked users, and how many marked
// conversations, one FinishDeletions reads.
const deletionBatch = 100

var _ persistence.DeletionFinisher = (*Store)(nil)

// FinishDeletions finishes the account deletions that were cut off
// (persistence.DeletionFinisher): up to deletionBatch users DeleteUser
// marked, or MarkUserDeleting marked longer than Options.DeletionGrace
// ago, found through the index deleting (finishMarked: their mark
// sealed as DeleteUser's, so it is never taken back while their data
// goes, then finishUser), then the owners
// of the deletion records left by a deletion cut after its user document
// was deleted (finishDeletions). It returns how many of either it
// finished, or found finished by a run beside it; only those it finished
// are logged as finished. Beside a DeleteUser still running, or on two
// servers at once, the work is done twice, harmlessly (see finishUser).
// Then it finishes up to deletionBatch conversations DeleteConversation
// marked (finishConvDeletions), and counts them too. Last it removes the
// messages failed inserts may have stored in conversations since deleted
// (sweepUnsureInserts, bounded on its own: not counted).
func (s *Store) FinishDeletions(ctx context.Context) (int, error) {
	users, err := s.finishUserDeletions(ctx)
	if err != nil {
		return users, err
	}
	convs, err := s.finishConvDeletions(ctx)
	if err != nil {
		return users + convs, err
	}
	_, err = s.sweepUnsureInserts(ctx)
	return users + convs, err
}

// finishUserDeletions finishes up to deletionBatch marked users and the
// deletion records left (see FinishDeletions), and returns how many.
func (s *Store) finishUserDeletions(ctx context.Context) (int, error) {
	before := now().Add(-s.deletionGrace)
	marked, err := s.markedUsers(ctx, before, deletionBatch)
	if err != nil {
		return 0, fmt.Errorf("finish account deletions: %w", err)
	}
	n := 0
	for _, oid := range marked {
		switch err := s.finishMarked(ctx, oid, before); {
		case errors.Is(err, errNotMarked):
			s.log.Debug("mongodb: a cut-off account deletion was taken back before its mark was sealed", "user_id", oid.Hex())
			continue
		case errors.Is(err, persistence.ErrNotFound): // a run beside this one deleted the user document
			s.log.Debug("mongodb: a cut-off account deletion was finished by another run", "user_id", oid.Hex())
		case err != nil:
			return n, fmt.Errorf("finish the deletion of user %s: %w", oid.Hex(), err)
		default:
			s.log.Info("mongodb: finished a cut-off account deletion", "user_id", oid.Hex())
		}
		n++
	}
	records, err := s.deletionRecords(ctx)
	if err != nil {
		return n, fmt.Errorf("finish account deletions: %w", err)
	}
	swept, err := s.finishDeletions(ctx, records)
	return n + swept, err
}

// markedUsers returns the ids of up to limit marked users to finish, on
// the primary (finishable).
func (s *Store) markedUsers(ctx context.Context, before time.Time, limit int64) ([]bson.ObjectID, error) {
	ids, err := findIDs(ctx, s.users, finishable(before), options.Find().SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("find users being deleted: %w", err)
	}
	return ids, nil
}

// finishable selects the marked users FinishDeletions finishes: those
// DeleteUser marked (their password hash cleared), and those
// MarkUserDeleting marked before before (s.deletionGrace ago), whose
// deletion (on any instance) may still be ending their live work until
// then. The range on deleting_at (every mark is past 1970) lets MongoDB
// read the index deleting.
func finishable(before time.Time) bson.D {
	return bson.D{
		{Key: "deleting_at", Value: bson.D{{Key: "$gte", Value: time.Unix(0, 0).UTC()}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "password_hash", Value: ""}},
			bson.D{{Key: "deleting_at", Value: bson.D{{Key: "$lt", Value: before}}}},
		}},
	}
}

// finishMarked finishes the deletion of user oid, whom markedUsers found
// marked (before: its bound on a MarkUserDeleting mark). First it seals
// the mark as DeleteUser's (the password hash cleared, while the user
// is still finishable, in one update under the document's lock), so that
// an UnmarkUserDeleting landing afterwards (a deletion taking its mark
// back late) matches nothing instead of bringing back a user whose data
// is going; only then does it delete (finishUser). errNotMarked when the
// user is there but no longer stands marked (the mark taken back);
// ErrNotFound when the user document is gone (another run finished
// them: its deletion record, if any is left, is swept after).
func (s *Store) finishMarked(ctx context.Context, oid bson.ObjectID, before time.Time) error {
	if err := s.sealMark(ctx, oid, before); err != nil {
		return err
	}
	return s.finishUser(ctx, oid)
}

// sealMark clears the password hash of user oid while they are
// finishable (see finishMarked).
func (s *Store) sealMark(ctx context.Context, oid bson.ObjectID, before time.Time) error {
	unlock, err := s.locks.lock(ctx, oid)
	if err != nil {
		return fmt.Errorf("seal the deletion mark: %w", err)
	}
	defer unlock()
	filter := append(bson.D{{Key: "_id", Value: oid}}, finishable(before)...)
	r, err := s.users.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: ""}}}})
	if err != nil {
		return fmt.Errorf("seal the deletion mark: %w", mapErr(err))
	}
	if r.MatchedCount == 0 {
		return s.whyNotSealed(ctx, oid)
	}
	return nil
}

// whyNotSealed tells why sealMark matched nothing: ErrNotFound when the
// user document is gone (another run finished the deletion), else
// errNotMarked (the mark taken back).
func (s *Store) whyNotSealed(ctx context.Context, oid bson.ObjectID) error {
	ids, err := findIDs(ctx, s.users, bson.D{{Key: "_id", Value: oid}}, options.Find().SetLimit(1))
	switch {
	case err != nil:
		return fmt.Errorf("seal the deletion mark: %w", err)
	case len(ids) == 0:
		return persistence.ErrNotFound
	}
	return errNotMarked
}

// errNotMarked is finishMarked's error for a user whose mark no longer
// stands as markedUsers read it.
var errNotMarked = errors.New("the user is no longer marked as being deleted")

// deletionRecords returns every deletion record (the meta collection is
// small: at most one document per deletion under way).
func (s *Store) deletionRecords(ctx context.Context) ([]deletionDoc, error) {
	var docs []deletionDoc
	cur, err := s.meta.Find(ctx, bson.D{{Key: "kind", Value: deletionKind}})
	if err == nil {
		err = cur.All(ctx, &docs)
	}
	if err != nil {
		return nil, fmt.Errorf("find deletion records: %w", err)
	}
	return docs, nil
}

// deletionKind marks the meta documents that record an account deletion
// in progress (DeleteUser), one per user, _id "deletion:" and the user's
// id.
const deletionKind = "user_deletion"

// deletionDoc records that DeleteUser is deleting a user: written before
// the user document is deleted, removed after the last sweep. One left
// behind (the process died or the sweep failed in between) names an owner
// whose documents finishDeletions sweeps after the next Open.
type deletionDoc struct {
	ID    string        `bson:"_id"`
	Kind  string        `bson:"kind"`
	Owner bson.ObjectID `bson:"owner"`
}

// deletionID is the _id of owner's deletion record.
func deletionID(owner bson.ObjectID) string { return "deletion:" + owner.Hex() }

// recordDeletion writes owner's deletion record, unless one is there: left
// by an earlier run, or written meanwhile by a run finishing the same
// deletion (two upserts at once could both insert, and one of them fail
// on the duplicate _id; an insert that finds the record there is the same
// case, taken the same way, every time).
func (s *Store) recordDeletion(ctx context.Context, owner bson.ObjectID) error {
	d := deletionDoc{ID: deletionID(owner), Kind: deletionKind, Owner: owner}
	_, err := s.meta.InsertOne(ctx, d)
	if err != nil && !errors.Is(mapErr(err), persistence.ErrDuplicate) {
		return fmt.Errorf("record the deletion: %w", err)
	}
	return nil
}

// forgetDeletion removes owner's deletion record.
func (s *Store) forgetDeletion(ctx context.Context, owner bson.ObjectID) error {
	if _, err := s.meta.DeleteOne(ctx, bson.D{{Key: "_id", Value: deletionID(owner)}}); err != nil {
		return fmt.Errorf("remove the deletion record: %w", err)
	}
	return nil
}

// finishDeletions completes the account deletions cut off after their
// user document was deleted (docs, their records): for each record whose
// user document is gone it sweeps the owner's conversations and messages
// (sweepOwned, the last sweep that did not run or failed) and removes the
// record; it returns how many. A record whose user is still there is left
// alone: that user is marked (the marked pass finishes them), or is being
// deleted right now, or an older server's DeleteUser failed before the
// user went (see docs/deploy.md).
func (s *Store) finishDeletions(ctx context.Context, docs []deletionDoc) (int, error) {
	owners := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		owners[i] = d.Owner
	}
	swept, err := s.sweepUnknown(ctx, owners)
	for i, o := range swept {
		if err := s.forgetDeletion(ctx, o); err != nil {
			return i, fmt.Errorf("finish the deletion of user %s: %w", o.Hex(), err)
		}
	}
	if err != nil {
		return len(swept), fmt.Errorf("finish cut-off account deletions: %w", err)
	}
	return len(swept), nil
}

// orphanBatch is how many owners sweepOrphans looks up in one query.
const orphanBatch = 500

// sweepOrphans deletes every conversation and message whose owner has no
// user document: what a create that raced the account's deletion left
// before CreateConversation checked its owner (persistence.ErrUnknownOwner),
// and the messages the old last sweep of DeleteUser (messages before
// conversations) could miss. It reads each collection's owners once (an
// aggregation: a scan of the collection), and looks them up on the
// primary orphanBatch at a time: a user is created before anything of
// theirs, so an owner not found there is gone, and a user being deleted
// meanwhile is swept twice, harmlessly.
func (s *Store) sweepOrphans(ctx context.Context) error {
	for _, c := range []*mongo.Collection{s.conversations, s.messages} {
		if err := s.sweepOrphansOf(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// sweepOrphansOf is sweepOrphans for the documents of collection c. Its
// cursor is closed with a context that does not end with ctx: the sweep
// is cut by ctx (Close), and a close with an ended context sends nothing,
// leaving the cursor open on the server until its idle timeout.
func (s *Store) sweepOrphansOf(ctx context.Context, c *mongo.Collection) error {
	cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$owner_id"}}}}})
	if err != nil {
		return fmt.Errorf("owners of %s: %w", c.Name(), err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var batch []bson.ObjectID
	for cur.Next(ctx) {
		var d struct {
			ID bson.ObjectID `bson:"_id"`
		}
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("owners of %s: %w", c.Name(), err)
		}
		if batch = append(batch, d.ID); len(batch) == orphanBatch {
			if _, err := s.sweepUnknown(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("owners of %s: %w", c.Name(), err)
	}
	_, err = s.sweepUnknown(ctx, batch)
	return err
}

// sweepUnknown sweeps the documents of each of owners that has no user
// document, looked up in one query, and returns those it swept, up to a
// failure.
func (s *Store) sweepUnknown(ctx context.Context, owners []bson.ObjectID) ([]bson.ObjectID, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	users, err := findIDs(ctx, s.users, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: owners}}}})
	if err != nil {
		return nil, fmt.Errorf("look up owners: %w", err)
	}
	known := make(map[bson.ObjectID]bool, len(users))
	for _, u := range users {
		known[u] = true
	}
	var swept []bson.ObjectID
	for _, o := range owners {
		if known[o] {
			continue
		}
		if err := s.sweepOwned(ctx, o); err != nil {
			return swept, fmt.Errorf("sweep the documents of deleted user %s: %w", o.Hex(), err)
		}
		swept = append(swept, o)
		s.log.Info("mongodb: deleted the documents of a deleted user", "user_id", o.Hex())
	}
	return swept, nil
}
