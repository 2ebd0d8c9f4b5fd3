package mongo

import (
	"context"
	"fmt"

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
// however long the message already is.
//
// Unordered statements may run in any order, so updates are first merged per
// message id: the appends in batch order, and for the other fields the last
// non-zero value. Updates to unknown or malformed ids match nothing and are
// ignored. Updates are filtered by _id alone: they come from the server's
// batching writer for messages it created, not from a user's request.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) error {
	models := updateModels(updates)
	if len(models) == 0 {
		return nil
	}
	_, err := s.messages.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	return nil
}

// mergedUpdate is every change of one batch to one message.
type mergedUpdate struct {
	id     bson.ObjectID
	chunks []string
	set    persistence.MessageUpdate // Append unused
}

// updateModels merges updates per message and returns one model per message,
// in the order each message first appears.
func updateModels(updates []persistence.MessageUpdate) []mongo.WriteModel {
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
	models := make([]mongo.WriteModel, 0, len(order))
	for _, m := range order {
		if doc := m.update(); len(doc) > 0 {
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: m.id}}).
				SetUpdate(doc))
		}
	}
	return models
}

// merge folds u into m.
func (m *mergedUpdate) merge(u persistence.MessageUpdate) {
	if u.Append != "" {
		m.chunks = append(m.chunks, u.Append)
	}
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
	if !u.At.IsZero() {
		m.set.At = u.At
	}
}

// update is the update document of m; empty when m changes nothing.
func (m *mergedUpdate) update() bson.D {
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
	if !m.set.At.IsZero() {
		set = append(set, bson.E{Key: "updated_at", Value: normTime(m.set.At)})
	}
	var doc bson.D
	if len(m.chunks) > 0 {
		doc = append(doc, bson.E{Key: "$push", Value: bson.D{
			{Key: "content", Value: bson.D{{Key: "$each", Value: m.chunks}}},
		}})
	}
	if len(set) > 0 {
		doc = append(doc, bson.E{Key: "$set", Value: set})
	}
	return doc
}
