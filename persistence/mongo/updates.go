package mongo

import (
	"context"
	"fmt"
	"strings"

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
// fields the last non-zero value. Updates to unknown or malformed ids match
// nothing and are ignored. Updates are filtered by _id alone: they come from
// the server's batching writer for messages it created, not from a user's
// request.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) error {
	merged := mergeUpdates(updates)
	if len(merged) == 0 {
		return nil
	}
	ids := make([]bson.ObjectID, len(merged))
	for i, m := range merged {
		ids[i] = m.id
	}
	defer s.locks.lock(ids...)()
	if err := s.splitWords(ctx, merged); err != nil {
		return fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	models := make([]mongo.WriteModel, 0, len(merged))
	for _, m := range merged {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: m.id}}).
			SetUpdate(m.update()))
	}
	if _, err := s.messages.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		s.tails.forget(ids...) // which statements applied is unknown
		return fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	for _, m := range merged {
		switch {
		case m.set.Status.Final():
			s.tails.forget(m.id)
		case m.known && m.text.Len() > 0:
			s.tails.set(m.id, m.newTail)
		}
	}
	return nil
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
// appears, and drops malformed ids and updates that change nothing.
func mergeUpdates(updates []persistence.MessageUpdate) []*mergedUpdate {
	var order []*mergedUpdate
	byID := make(map[string]*mergedUpdate, len(updates))
	for _, u := range updates {
		m := byID[u.ID]
		if m == nil {
			oid, ok := objectID(u.ID)
			if !ok {
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
	return kept
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
