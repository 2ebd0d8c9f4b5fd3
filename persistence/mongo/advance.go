package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// maxAdvances bounds the tries of advanceConversation: each one after the
// first follows a write of the conversation landing in between.
const maxAdvances = 8

// advanceConversation applies set ($set fields, possibly none) to the
// conversation filter selects and moves its updated_at to at, or to 1 ms
// past the stored one when that is not before at: a clock ahead of this
// process's stored it (another instance's, or this host's before it
// stepped back), and updated_at must still move forward on every write,
// whatever the clocks. With ifTitle set, only while the title is
// *ifTitle (ConversationPatch.IfTitle). The update is conditioned on the
// stored time being before the one it sets, so it is one atomic step on
// MongoDB; FerretDB, which has no pipeline updates and applies an update
// as a read then a write, needs the document's lock (locks.go), which the
// caller holds. When the update matches nothing, the conversation is read
// on the primary (where it was written a moment ago, perhaps): gone
// (mongo.ErrNoDocuments), another title (persistence.ErrConflict), or a
// stored time at or after at, and then the update is tried again past it.
// The usual write is one round trip, as a $max was.
//
// It returns the document as written (whole: FerretDB's findAndModify
// takes no projection).
func (s *Store) advanceConversation(ctx context.Context, filter bson.D, ifTitle *string, set bson.D, at time.Time) (conversationDoc, error) {
	cond := slices.Clip(filter)
	if ifTitle != nil {
		cond = append(cond, bson.E{Key: "title", Value: *ifTitle})
	}
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	for range maxAdvances {
		var d conversationDoc
		err := s.conversations.FindOneAndUpdate(ctx,
			append(slices.Clip(cond), bson.E{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: at}}}),
			bson.D{{Key: "$set", Value: append(slices.Clip(set), bson.E{Key: "updated_at", Value: at})}},
			opts).Decode(&d)
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return d, err
		}
		var stored struct {
			Title     string    `bson:"title"`
			UpdatedAt time.Time `bson:"updated_at"`
		}
		err = s.convsPrimary.FindOne(ctx, filter,
			options.FindOne().SetProjection(bson.D{{Key: "title", Value: 1}, {Key: "updated_at", Value: 1}})).Decode(&stored)
		switch {
		case err != nil:
			return conversationDoc{}, err
		case ifTitle != nil && stored.Title != *ifTitle:
			return conversationDoc{}, persistence.ErrConflict
		}
		if past := normTime(stored.UpdatedAt).Add(time.Millisecond); at.Before(past) {
			at = past
		}
	}
	return conversationDoc{}, fmt.Errorf("its updated_at moved past ours %d times in a row", maxAdvances)
}
