package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Messages an insert may have left behind. An InsertMessage whose
// InsertOne failed (a timeout, a lost reply) cannot undo it: the server
// may apply the insert later, after a deletion of the conversation
// (deleteMarkedConv, finishUser) listed and removed its messages, and
// then nothing else removes that message (sweepOrphans runs once per
// database). The same holds for an insert whose undo failed past
// Options.UndoTimeout. Such an insert notes its conversation here, and
// each round of the deletion sweep (FinishDeletions) removes the messages
// of every noted conversation that is gone, for unsureHold after the
// note: one indexed read of the conversation by _id, and when it is gone
// one delete by conversation_id (the index the conversation's deletion
// uses), per noted conversation, unsureBatch of them a round. Nothing
// scans a collection (FerretDB scans it for an unindexed query), and
// there is nothing to do at all while no insert fails.
//
// The notes live in the process: an insert that fails and lands late,
// after its conversation's deletion, in an instance that then stops
// before its next sweep, leaves its message (as before this sweep). Noting
// to the database instead would add a write, with its own retries, to the
// path of an insert that just failed, most often because the database
// was unreachable.

// The bounds of the notes.
const (
	// unsureHold is how long a noted conversation is checked: an insert
	// the server applies later than that after the store gave up on it is
	// not looked for.
	unsureHold = time.Hour
	// unsureBatch is how many noted conversations one round checks, those
	// checked longest ago (or never) first, so that under many notes (an
	// outage failing every insert) each is checked in turn.
	unsureBatch = 100
	// unsureMax bounds the notes; past it a note is refused and logged.
	unsureMax = 10000
)

// unsureInserts are the conversations noted by failed inserts.
type unsureInserts struct {
	mu    sync.Mutex
	convs map[bson.ObjectID]unsureState
}

// unsureState is when a conversation was last noted, and last checked.
type unsureState struct {
	at, checked time.Time
}

// unsureNote is a noted conversation with its state.
type unsureNote struct {
	conv bson.ObjectID
	unsureState
}

// note records conv, noted now; false when the notes are full.
func (u *unsureInserts) note(conv bson.ObjectID, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.convs == nil {
		u.convs = map[bson.ObjectID]unsureState{}
	}
	st, ok := u.convs[conv]
	if !ok && len(u.convs) >= unsureMax {
		return false
	}
	st.at = now
	u.convs[conv] = st
	return true
}

// next returns up to limit noted conversations, those checked longest
// ago first (never checked: the oldest notes first).
func (u *unsureInserts) next(limit int) []unsureNote {
	u.mu.Lock()
	notes := make([]unsureNote, 0, len(u.convs))
	for c, st := range u.convs {
		notes = append(notes, unsureNote{c, st})
	}
	u.mu.Unlock()
	slices.SortFunc(notes, func(a, b unsureNote) int {
		if c := a.checked.Compare(b.checked); c != 0 {
			return c
		}
		return a.at.Compare(b.at)
	})
	return notes[:min(limit, len(notes))]
}

// done records that n was checked at now, and drops it when its note is
// older than unsureHold (unless conv was noted again since n was read).
func (u *unsureInserts) done(n unsureNote, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	st, ok := u.convs[n.conv]
	switch {
	case !ok:
	case st.at.Equal(n.at) && now.Sub(n.at) > unsureHold:
		delete(u.convs, n.conv)
	default:
		st.checked = now
		u.convs[n.conv] = st
	}
}

// noteUnsureInsert notes that a message of conv may be stored although
// its insert failed or could not be undone.
func (s *Store) noteUnsureInsert(conv bson.ObjectID) {
	if !s.unsure.note(conv, time.Now()) {
		s.log.Error("mongodb: too many failed inserts to check; a message stored late in a deleted conversation may be left",
			"conversation_id", conv.Hex())
	}
}

// sweepUnsureInserts removes the messages of each noted conversation that
// is gone (see above), up to unsureBatch of them, and forgets the notes
// older than unsureHold; it returns how many messages it removed.
func (s *Store) sweepUnsureInserts(ctx context.Context) (int, error) {
	removed := 0
	for _, note := range s.unsure.next(unsureBatch) {
		n, err := s.sweepIfGone(ctx, note.conv)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("remove the messages of deleted conversation %s: %w", note.conv.Hex(), err)
		}
		if n > 0 {
			s.log.Info("mongodb: removed messages stored after their conversation's deletion", "conversation_id", note.conv.Hex(), "messages", n)
		}
		s.unsure.done(note, time.Now())
	}
	return removed, nil
}

// sweepIfGone deletes the messages of conversation conv when its document
// is gone (one being deleted is left to its deletion), on the primary, and
// returns how many it deleted.
func (s *Store) sweepIfGone(ctx context.Context, conv bson.ObjectID) (int, error) {
	err := s.convsPrimary.FindOne(ctx, bson.D{{Key: "_id", Value: conv}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case err == nil:
		return 0, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return 0, err
	}
	res, err := s.messages.DeleteMany(ctx, bson.D{{Key: "conversation_id", Value: conv}})
	if err != nil {
		return 0, err
	}
	return int(res.DeletedCount), nil
}
