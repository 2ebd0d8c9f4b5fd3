package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// IsFerretDB reports whether Open took the server for FerretDB, which
// selects how ApplyMessageUpdates checks the fence.
func IsFerretDB(s *Store) bool { return s.ferretDB }

// SetFerretDB overrides what Open detected, so that a test runs the MongoDB
// path (the atomic {_id, status} filter) on FerretDB too. Call it before
// the store is used concurrently.
func SetFerretDB(s *Store, v bool) { s.ferretDB = v }

// RecordSchemaStep records migration step version as Open does and says
// whether this call recorded it (false: the schema was at it or past it,
// as when another server starting meanwhile recorded it first).
func RecordSchemaStep(ctx context.Context, s *Store, version int) (bool, error) {
	return s.apply(ctx, migrations[version-1])
}

// TailCached reports whether the store knows the stored state of message
// id (its tail cache, see split.go) for sure: not the state a statement
// reported failed was written from.
func TailCached(s *Store, id string) bool {
	oid, ok := objectID(id)
	if !ok {
		return false
	}
	st, ok := s.tails.get(oid)
	return ok && !st.unsure
}

// WaitCleanUp waits for the start-up part of the clean-up Open started in
// the background (what Open found to do) to end.
func WaitCleanUp(s *Store) { <-s.startedUp }

// WithAfterSweep returns opts with fn called after each periodic look for
// cut-off account deletions (every DeletionSweep) with what
// FinishDeletions returned.
func WithAfterSweep(opts Options, fn func(n int, err error)) Options {
	opts.afterSweep = fn
	return opts
}

// SweepOrphans runs the sweep of what deleted users left (sweepOrphans)
// once, with ctx.
func SweepOrphans(ctx context.Context, s *Store) error { return s.sweepOrphans(ctx) }

// UndoEmailRewrite takes s's database back to before its one-time
// rewrite of emails was recorded, as an older release left it.
func UndoEmailRewrite(ctx context.Context, s *Store) error {
	_, err := s.meta.DeleteOne(ctx, bson.D{{Key: "_id", Value: emailsID}})
	return err
}

// EmailsRewritten says whether s's Open ran the rewrite of emails.
func EmailsRewritten(s *Store) bool { return s.emailsRewritten }

// WithFailEmailRewrite returns opts with the one-time rewrite of emails
// failing the write of each email fail errs for.
func WithFailEmailRewrite(opts Options, fail func(email string) error) Options {
	opts.failEmailRewrite = fail
	return opts
}

// SetDocLocks turns s's document locks (docLocks) on, as Open does on
// FerretDB, or off, as on MongoDB. SetFerretDB leaves them as they are.
// Call it before the store is used concurrently.
func SetDocLocks(s *Store, on bool) { s.locks.ferretDB = on }

// DocLocksOn reports whether s takes its document locks.
func DocLocksOn(s *Store) bool { return s.locks.ferretDB }

// HoldDocLocks takes every stripe of s's document locks, whether s takes
// them or not, and returns their release.
func HoldDocLocks(s *Store) (release func()) {
	for _, st := range s.locks.stripes {
		st <- struct{}{}
	}
	return func() {
		for _, st := range s.locks.stripes {
			<-st
		}
	}
}

// OnDocLockWait has fn run, with the caller's context, each time one of
// s's document locks waits for a stripe another holds (HoldDocLocks);
// nil runs nothing.
func OnDocLockWait(s *Store, fn func(ctx context.Context)) {
	if fn == nil {
		s.locks.waitHook.Store(nil)
		return
	}
	s.locks.waitHook.Store(&fn)
}

// SetTextIndex overrides what Open found of the text index: set on a
// server without one (FerretDB), a search's $text is refused.
func SetTextIndex(s *Store, v bool) { s.textIndex.Store(v) }

// TextIndexNow runs Open's decision about the text index (textIndexNow)
// again: whether it is left to the background build.
func TextIndexNow(ctx context.Context, s *Store) bool { return s.textIndexNow(ctx) }

// BuildTextIndex runs the background build of the text index (cleanUp's).
func BuildTextIndex(ctx context.Context, s *Store) { s.buildTextIndex(ctx) }

// TextIndexUsed reports whether searches use the text index.
func TextIndexUsed(s *Store) bool { return s.textIndex.Load() }

// WithDeleteStep returns opts with a conversation's deletion removing n
// messages a delete (deleteStep).
func WithDeleteStep(opts Options, n int) Options {
	opts.deleteStep = n
	return opts
}

// WithInsertMessage returns opts with InsertMessage's insert of its
// document run through fn, which may run insert (with any context) or
// not, now or later.
func WithInsertMessage(opts Options, fn func(ctx context.Context, insert func(context.Context) error) error) Options {
	opts.insertMessage = fn
	return opts
}

// ShiftTimes moves every timestamp stored in s's users, conversations and
// messages forward by d, as if the clocks that wrote them had been d ahead
// (document by document: FerretDB has no pipeline updates).
func ShiftTimes(ctx context.Context, s *Store, d time.Duration) error {
	for _, coll := range []*mongo.Collection{s.users, s.conversations, s.messages} {
		cur, err := coll.Find(ctx, bson.D{})
		if err != nil {
			return err
		}
		var docs []struct {
			ID        bson.ObjectID `bson:"_id"`
			CreatedAt time.Time     `bson:"created_at"`
			UpdatedAt time.Time     `bson:"updated_at"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return err
		}
		for _, doc := range docs {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, bson.D{{Key: "$set", Value: bson.D{
				{Key: "created_at", Value: doc.CreatedAt.Add(d)}, {Key: "updated_at", Value: doc.UpdatedAt.Add(d)}}}})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// AgeDeletionMark moves user id's deletion mark (deleting_at) back by d,
// as if it was written d earlier.
func AgeDeletionMark(ctx context.Context, s *Store, id string, d time.Duration) error {
	oid, _ := objectID(id)
	var u userDoc
	if err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&u); err != nil {
		return err
	}
	if u.DeletingAt == nil {
		return errors.New("the user is not marked")
	}
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "deleting_at", Value: u.DeletingAt.Add(-d)}}}})
	return err
}
