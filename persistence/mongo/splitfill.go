package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The first release wrote messages without split_words, the words a chunk
// boundary cut in two (split.go): search finds a word only inside one
// chunk or one split word, so it missed those words in them. Once per
// database, the clean-up after Open gives every message without the field
// the split words of its chunks (fillSplitWords), and records it
// (splitFilledID). A database created by a build that writes the field
// has the record from the start.

// splitFilledID is the _id of the meta document recording that every
// message has its split_words field.
const splitFilledID = "split_words_filled"

// splitFillBatch bounds the updates sent in one bulk write.
const splitFillBatch = 500

// splitFillNeeded reports whether the messages still need their split
// words filled (no record that it was done); a fresh database is recorded
// as done at once.
func (s *Store) splitFillNeeded(ctx context.Context, fresh bool) (bool, error) {
	switch err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: splitFilledID}}).Err(); {
	case errors.Is(err, mongo.ErrNoDocuments) && fresh:
		return false, s.recordSplitFilled(ctx)
	case errors.Is(err, mongo.ErrNoDocuments):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read the split words' state: %w", err)
	}
	return false, nil
}

// recordSplitFilled records that every message has its split words.
func (s *Store) recordSplitFilled(ctx context.Context) error {
	if err := s.upsertMeta(ctx, splitFilledID, bson.D{{Key: "at", Value: now()}}); err != nil {
		return fmt.Errorf("record the split words filled: %w", err)
	}
	return nil
}

// fillSplitWordsOnce runs fillSplitWords and records that it ran to its
// end; a failure is logged and the next start tries again.
func (s *Store) fillSplitWordsOnce(ctx context.Context) {
	start := time.Now()
	n, err := s.fillSplitWords(ctx)
	if err == nil {
		err = s.recordSplitFilled(ctx)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("mongodb: filling the split words of messages older than them failed; the next start tries again", "err", err)
	case err == nil && n > 0:
		s.log.Info("mongodb: filled the split words of messages older than them (search finds the words their chunks cut)",
			"messages", n, "took", time.Since(start).Round(time.Millisecond).String())
	}
}

// fillSplitWords sets the split words of every message that has no
// split_words field, from its chunks, and returns how many it set. Each
// update applies only while the field is still absent: an append that
// created it meanwhile (an old answer still streaming) is not undone.
func (s *Store) fillSplitWords(ctx context.Context) (int, error) {
	missing := bson.E{Key: "split_words", Value: bson.D{{Key: "$exists", Value: false}}}
	cur, err := s.messagesPrimary.Find(ctx, bson.D{missing},
		options.Find().SetProjection(bson.D{{Key: "content", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("find messages without split words: %w", err)
	}
	defer func() { _ = cur.Close(ctx) }()
	var batch []mongo.WriteModel
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.messages.BulkWrite(ctx, batch, options.BulkWrite().SetOrdered(false))
		n += len(batch)
		batch = batch[:0]
		if err != nil {
			return fmt.Errorf("fill split words: %w", err)
		}
		return nil
	}
	for cur.Next(ctx) {
		var d struct {
			ID      bson.ObjectID `bson:"_id"`
			Content []string      `bson:"content"`
		}
		if err := cur.Decode(&d); err != nil {
			return n, fmt.Errorf("read a message without split words: %w", err)
		}
		batch = append(batch, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}, missing}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "split_words", Value: splitWordsOf(d.Content)}}}}))
		if len(batch) == splitFillBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return n, fmt.Errorf("find messages without split words: %w", err)
	}
	return n, flush()
}

// splitWordsOf is the split words appending chunks one after another
// stores (see appendText): never nil.
func splitWordsOf(chunks []string) []string {
	words := []string{}
	tail := ""
	for _, c := range chunks {
		var split string
		split, tail = appendText(tail, c)
		if split != "" {
			words = append(words, split)
		}
	}
	return words
}
