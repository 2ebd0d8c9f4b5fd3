package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// ApplyMessageUpdates writes a batch of updates as one unordered bulk write
// (one update command on the wire, one statement per message).
//
// Text is never rewritten: MongoDB has no string append outside pipeline
// updates (which FerretDB lacks), so a message's content is an array of
// chunks and Append pushes one more ($push with $each); reads join them.
// Bytes written per checkpoint are the new text plus a small fixed overhead,
// however long the message already is. When a chunk boundary cuts a word in
// two, the word (up to maxSplitRunes characters each side) is also pushed to
// split_words so that search finds it; the batching writer cuts at
// whitespace, so in the server's normal flow that happens only inside text
// without spaces (CJK, long URLs).
//
// Unordered statements may run in any order, so updates are first merged per
// message id: the appends concatenated in batch order, and for the other
// fields the last non-zero value. Updates are filtered by _id and by status
// streaming (the fence, see persistence.Messages): they come from the
// server's batching writer for messages it created, not from a user's
// request, and they stop applying once the message is final.
//
// Which statements matched: a bulk write reports only a total. When it
// matched every statement (the normal case) nothing was skipped; otherwise
// the messages are read back (see unapplied) and malformed ids count as
// skipped too.
//
// Atomicity: on MongoDB the filter and the update of one document are one
// atomic step, so an update never lands on a message InterruptMessage ended.
// FerretDB (v1) runs an update as a read of the matching documents followed
// by a write of the whole document, without a transaction: an update that
// read the message while it was streaming and writes it after a concurrent
// InterruptMessage overwrites the interrupt (status streaming again, the
// text appended). That window is one statement long, but it exists: on
// FerretDB the fence makes a late owner's writes lose against a claim that
// came first, not against one that came at the same moment. Cost: MongoDB
// finds each message by its _id index; FerretDB v1 (SQLite) pushes only a
// filter of _id alone down to its database, so there each statement reads
// the collection through: BenchmarkFerretDB/AppendStreaming over 5,000
// messages went from 235 ms to 1,370 ms per update with the fence (small
// collections in tests; FerretDB is not the production target). Not done
// yet: on FerretDB, filter by _id alone and check the status with a find
// by _id per message, which FerretDB's lack of atomicity makes no weaker.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	merged, skipped := mergeUpdates(updates)
	if len(merged) == 0 {
		return skipped, nil
	}
	ids := make([]bson.ObjectID, len(merged))
	for i, m := range merged {
		ids[i] = m.id
	}
	defer s.locks.lock(ids...)()
	if err := s.splitWords(ctx, merged); err != nil {
		return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	models := make([]mongo.WriteModel, 0, len(merged))
	for _, m := range merged {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: m.id}, {Key: "status", Value: string(persistence.StatusStreaming)}}).
			SetUpdate(m.update()))
	}
	res, err := s.messages.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		s.tails.forget(ids...) // which statements applied is unknown
		return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	var missed map[bson.ObjectID]bool
	if res.MatchedCount < int64(len(models)) {
		missed = s.unapplied(ctx, merged)
	}
	for _, m := range merged {
		switch {
		case missed[m.id]:
			s.tails.forget(m.id)
			skipped = append(skipped, m.id.Hex())
		case m.set.Status.Final():
			s.tails.forget(m.id)
		case m.known && m.text.Len() > 0:
			s.tails.set(m.id, m.newTail)
		}
	}
	return skipped, nil
}

// unapplied tells, after a bulk write that matched fewer statements than
// it had, which of merged did not apply, by reading the messages back: an
// unknown message; a checkpoint whose message is not streaming; a final
// update whose message does not carry its status and time (one that does
// is a retry of an update that applied, and counts as applied). A checkpoint
// that applied just before another instance ended the message counts as
// skipped: its message is final either way. If the read fails, every final
// update of the batch counts as skipped, and no checkpoint: the caller
// then reads each such message to learn its stored state, which is right
// whether the update applied or not.
func (s *Store) unapplied(ctx context.Context, merged []*mergedUpdate) map[bson.ObjectID]bool {
	ids := make([]bson.ObjectID, len(merged))
	byID := make(map[bson.ObjectID]*mergedUpdate, len(merged))
	for i, m := range merged {
		ids[i], byID[m.id] = m.id, m
	}
	var docs []struct {
		ID        bson.ObjectID `bson:"_id"`
		Status    string        `bson:"status"`
		UpdatedAt time.Time     `bson:"updated_at"`
	}
	cur, err := s.messages.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}))
	if err == nil {
		err = cur.All(ctx, &docs)
	}
	missed := make(map[bson.ObjectID]bool, len(merged))
	if err != nil {
		s.log.Warn("read back message updates that matched nothing; reporting every final update as skipped", "err", err)
		for _, m := range merged {
			missed[m.id] = m.set.Status.Final()
		}
		return missed
	}
	for _, m := range merged {
		missed[m.id] = true
	}
	for _, d := range docs {
		m := byID[d.ID]
		if m == nil {
			continue
		}
		if m.set.Status.Final() {
			missed[d.ID] = d.Status != string(m.set.Status) || !m.set.At.IsZero() && !d.UpdatedAt.Equal(normTime(m.set.At))
		} else {
			missed[d.ID] = d.Status != string(persistence.StatusStreaming)
		}
	}
	return missed
}

// mergedUpdate is every change of one batch to one message.
type mergedUpdate struct {
	id        bson.ObjectID
	text      strings.Builder           // the batch's appends, in order
	reasoning strings.Builder           // the batch's reasoning appends, in order
	set       persistence.MessageUpdate // the other fields; Append unused

	known   bool   // the message exists, as far as the tail cache knows
	split   string // a word the new chunk completes, "" if none
	newTail string // trailing partial word after the append
}

// mergeUpdates merges updates per message, in the order each message first
// appears, and drops updates that change nothing and malformed ids, which
// it returns (they name no message: skipped).
func mergeUpdates(updates []persistence.MessageUpdate) ([]*mergedUpdate, []string) {
	var order []*mergedUpdate
	var malformed []string
	byID := make(map[string]*mergedUpdate, len(updates))
	for _, u := range updates {
		m := byID[u.ID]
		if m == nil {
			oid, ok := objectID(u.ID)
			if !ok {
				if !slices.Contains(malformed, u.ID) {
					malformed = append(malformed, u.ID)
				}
				continue
			}
			m = &mergedUpdate{id: oid}
			byID[u.ID] = m
			order = append(order, m)
		}
		m.merge(u)
	}
	kept := order[:0]
	for _, m := range order {
		if len(m.update()) > 0 {
			kept = append(kept, m)
		}
	}
	return kept, malformed
}

// merge folds u into m.
func (m *mergedUpdate) merge(u persistence.MessageUpdate) {
	m.text.WriteString(u.Append)
	m.reasoning.WriteString(u.AppendReasoning)
	if u.Status != "" {
		m.set.Status = u.Status
	}
	if u.FinishReason != "" {
		m.set.FinishReason = u.FinishReason
	}
	if u.Usage != nil {
		m.set.Usage = u.Usage
	}
	if u.Error != "" {
		m.set.Error = u.Error
	}
	if u.ErrorCode != "" {
		m.set.ErrorCode = u.ErrorCode
	}
	if !u.At.IsZero() {
		m.set.At = u.At
	}
}

// update is the update document of m; empty when m changes nothing.
func (m *mergedUpdate) update() bson.D {
	var doc bson.D
	var push bson.D
	if m.text.Len() > 0 {
		push = append(push, bson.E{Key: "content", Value: bson.D{{Key: "$each", Value: bson.A{m.text.String()}}}})
		if m.split != "" {
			push = append(push, bson.E{Key: "split_words", Value: bson.D{{Key: "$each", Value: bson.A{m.split}}}})
		}
	}
	if m.reasoning.Len() > 0 {
		push = append(push, bson.E{Key: "reasoning", Value: bson.D{{Key: "$each", Value: bson.A{m.reasoning.String()}}}})
	}
	if len(push) > 0 {
		doc = append(doc, bson.E{Key: "$push", Value: push})
	}
	if set := m.setFields(); len(set) > 0 {
		doc = append(doc, bson.E{Key: "$set", Value: set})
	}
	return doc
}

// setFields is the $set document of m.
func (m *mergedUpdate) setFields() bson.D {
	var set bson.D
	if m.set.Status != "" {
		set = append(set, bson.E{Key: "status", Value: string(m.set.Status)})
	}
	if m.set.FinishReason != "" {
		set = append(set, bson.E{Key: "finish_reason", Value: m.set.FinishReason})
	}
	if m.set.Usage != nil {
		set = append(set, bson.E{Key: "usage", Value: usageDocOf(m.set.Usage)})
	}
	if m.set.Error != "" {
		set = append(set, bson.E{Key: "error", Value: m.set.Error})
	}
	if m.set.ErrorCode != "" {
		set = append(set, bson.E{Key: "error_code", Value: m.set.ErrorCode})
	}
	if !m.set.At.IsZero() {
		set = append(set, bson.E{Key: "updated_at", Value: normTime(m.set.At)})
	}
	return set
}

// splitWords fills split and newTail of every update that appends text,
// reading the stored text of messages the tail cache does not know (after a
// restart, or when another process inserted them). The caller holds the
// messages' document locks.
func (s *Store) splitWords(ctx context.Context, merged []*mergedUpdate) error {
	tails := make(map[bson.ObjectID]string)
	var missing []bson.ObjectID
	for _, m := range merged {
		if m.text.Len() == 0 {
			continue
		}
		if tail, ok := s.tails.get(m.id); ok {
			tails[m.id] = tail
		} else {
			missing = append(missing, m.id)
		}
	}
	if len(missing) > 0 {
		if err := s.readTails(ctx, missing, tails); err != nil {
			return err
		}
	}
	for _, m := range merged {
		tail, ok := tails[m.id]
		if m.text.Len() == 0 || !ok {
			continue // nothing appended, or no such message
		}
		m.known = true
		m.split, m.newTail = appendText(tail, m.text.String())
	}
	return nil
}

// readTails adds the trailing partial words of the stored messages ids to tails.
func (s *Store) readTails(ctx context.Context, ids []bson.ObjectID, tails map[bson.ObjectID]string) error {
	cur, err := s.messages.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "content", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read message tails: %w", err)
	}
	var docs []struct {
		ID      bson.ObjectID `bson:"_id"`
		Content []string      `bson:"content"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read message tails: %w", err)
	}
	for _, d := range docs {
		tails[d.ID] = trailingWord(strings.Join(d.Content, ""))
	}
	return nil
}
