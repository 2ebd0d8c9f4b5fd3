package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// StreamingBefore returns a page of the messages still streaming last
// updated before before, oldest first (see persistence.Messages). The
// status index finds the streaming messages (few: the answers running,
// and those nothing ended); the server sorts them. A lagging secondary
// may still show one that just ended: its caller ends each with
// InterruptMessage, which changes only a message still streaming.
func (s *Store) StreamingBefore(ctx context.Context, before time.Time, after persistence.StreamingMessage, limit int) ([]persistence.StreamingMessage, error) {
	filter := bson.D{
		{Key: "status", Value: string(persistence.StatusStreaming)},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: normTime(before)}}},
	}
	if after.ID != "" {
		oid, ok := objectID(after.ID)
		if !ok {
			return nil, fmt.Errorf("streaming messages after %q: %w", after.ID, persistence.ErrNotFound)
		}
		at := normTime(after.UpdatedAt)
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "updated_at", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "updated_at", Value: at}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: oid}}}},
		}})
	}
	opts := options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "conversation_id", Value: 1}, {Key: "owner_id", Value: 1}, {Key: "updated_at", Value: 1}}).
		SetSort(bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(persistence.ClampPageLimit(limit)))
	cur, err := s.messages.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("streaming messages before %s: %w", before.Format(time.RFC3339), mapErr(err))
	}
	var docs []struct {
		ID             bson.ObjectID `bson:"_id"`
		ConversationID bson.ObjectID `bson:"conversation_id"`
		OwnerID        bson.ObjectID `bson:"owner_id"`
		UpdatedAt      time.Time     `bson:"updated_at"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("streaming messages before %s: %w", before.Format(time.RFC3339), mapErr(err))
	}
	out := make([]persistence.StreamingMessage, len(docs))
	for i, d := range docs {
		out[i] = persistence.StreamingMessage{ID: d.ID.Hex(), ConversationID: d.ConversationID.Hex(),
			OwnerID: d.OwnerID.Hex(), UpdatedAt: d.UpdatedAt.UTC()}
	}
	return out, nil
}
