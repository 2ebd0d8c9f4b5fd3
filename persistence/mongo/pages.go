package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// MessagePage returns the newest q.Limit messages created before q.Before
// (or the newest ones), oldest first, and whether older ones exist; fewer
// when their text passes q.MaxBytes (persistence.PageFill).
func (s *Store) MessagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error) {
	page, err := s.messagePage(ctx, ownerID, conversationID, q)
	if err != nil {
		return page, fmt.Errorf("page of conversation %s before %q: %w", conversationID, q.Before, err)
	}
	return page, nil
}

func (s *Store) messagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error) {
	ref, ok := parseOwned(ownerID, conversationID)
	if !ok {
		return persistence.MessagePage{Messages: []persistence.Message{}}, persistence.ErrNotFound
	}
	page, err := s.pageOf(ctx, ref, q)
	if err != nil {
		return page, err
	}
	// A conversation being deleted is gone, whatever of it is left.
	if err := s.convLive(ctx, ref.owner, ref.id, len(page.Messages) > 0 || q.Before != ""); err != nil {
		return persistence.MessagePage{Messages: []persistence.Message{}}, err
	}
	return page, nil
}

// pageOf reads the page q of the messages of conversation ref, without
// checking the conversation: the caller reads it after (convLive, or its
// document in ConversationWithPage).
func (s *Store) pageOf(ctx context.Context, ref ownedRef, q persistence.PageQuery) (persistence.MessagePage, error) {
	page := persistence.MessagePage{Messages: []persistence.Message{}}
	filter := bson.D{{Key: "conversation_id", Value: ref.id}, {Key: "owner_id", Value: ref.owner}}
	if q.Before != "" {
		before, err := s.pageStart(ctx, filter, q.Before)
		if err != nil {
			return page, err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: before.CreatedAt}}}},
			bson.D{{Key: "created_at", Value: before.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: before.ID}}}},
		}})
	}
	fill := persistence.NewPageFill(q)
	err := s.eachMessage(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(fill.Rows())), fill.Take)
	if err != nil {
		return page, err
	}
	return fill.Page(), nil
}

// pageStart reads the creation time and id of the message a page starts
// before; ErrNotFound unless it is in the conversation filter selects.
func (s *Store) pageStart(ctx context.Context, filter bson.D, id string) (messageDoc, error) {
	var d messageDoc
	oid, ok := objectID(id)
	if !ok {
		return d, persistence.ErrNotFound
	}
	f := append(slices.Clone(filter), bson.E{Key: "_id", Value: oid})
	err := s.messagesFor(ctx).FindOne(ctx, f, options.FindOne().SetProjection(bson.D{{Key: "created_at", Value: 1}})).Decode(&d)
	return d, mapErr(err)
}

// MessageOutline returns the conversation's messages without their text and reasoning.
func (s *Store) MessageOutline(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	ref, ok := parseOwned(ownerID, conversationID)
	if !ok {
		return nil, fmt.Errorf("outline of conversation %s: %w", conversationID, persistence.ErrNotFound)
	}
	ms, err := s.outlineOf(ctx, ref)
	if err == nil {
		err = s.convLive(ctx, ref.owner, ref.id, len(ms) > 0)
	}
	if err != nil {
		return nil, fmt.Errorf("outline of conversation %s: %w", conversationID, err)
	}
	return ms, nil
}

// outlineOf reads the messages of conversation ref without their text
// and reasoning, oldest first, without checking the conversation (see
// pageOf).
func (s *Store) outlineOf(ctx context.Context, ref ownedRef) ([]persistence.Message, error) {
	return s.findMessageList(ctx,
		bson.D{{Key: "conversation_id", Value: ref.id}, {Key: "owner_id", Value: ref.owner}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}).
			SetProjection(bson.D{{Key: "content", Value: 0}, {Key: "reasoning", Value: 0}, {Key: "split_words", Value: 0}}))
}

// findMessageList runs a find on messages.
func (s *Store) findMessageList(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]persistence.Message, error) {
	out := []persistence.Message{}
	err := s.eachMessage(ctx, filter, opts, func(m persistence.Message) bool {
		out = append(out, m)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachMessage runs a find on messages, handing take each one in turn
// until it returns false; the cursor is then closed, the messages after
// it not decoded (nor fetched, past the batch the server sent).
func (s *Store) eachMessage(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, take func(persistence.Message) bool) error {
	cur, err := s.messagesFor(ctx).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		var d messageDoc
		if err := cur.Decode(&d); err != nil {
			return err
		}
		if !take(d.message()) {
			return nil
		}
	}
	return cur.Err()
}

// contentSlice is how many chunks of a message's text one read fetches.
// Chunks are checkpoints (a few hundred bytes to a few kilobytes each) or
// one whole user message.
const contentSlice = 64

// ReadContent hands fn the message's text, a slice of its chunks at a
// time ($slice projection), so a large answer is never held whole. Servers
// without $slice projections (FerretDB v1) read the text whole, once, and
// hand it over in pieces.
func (s *Store) ReadContent(ctx context.Context, ownerID, id string, fn func(string) error) error {
	if err := s.readText(ctx, "content", ownerID, id, fn); err != nil {
		return fmt.Errorf("read text of message %s: %w", id, err)
	}
	return nil
}

// ReadReasoning hands fn the message's reasoning as ReadContent its text.
func (s *Store) ReadReasoning(ctx context.Context, ownerID, id string, fn func(string) error) error {
	if err := s.readText(ctx, "reasoning", ownerID, id, fn); err != nil {
		return fmt.Errorf("read reasoning of message %s: %w", id, err)
	}
	return nil
}

// readText hands fn the chunks of the message's array field (content or
// reasoning), in slices, or whole where the server has no $slice;
// ErrNotFound, before any chunk, when its conversation is being deleted
// (a read that started before the mark reads on until the message is
// gone).
func (s *Store) readText(ctx context.Context, field, ownerID, id string, fn func(string) error) error {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.ErrNotFound
	}
	filter := ref.filter()
	live := func(d chunks) error { return s.convLive(ctx, ref.owner, d.ConversationID, true) }
	var err error
	if !s.noSlice.Load() {
		err = s.readSlices(ctx, filter, field, live, fn)
		if isNotImplemented(err) {
			s.noSlice.Store(true)
			s.log.Info("the server has no $slice projection: message texts are read whole")
		}
	}
	if s.noSlice.Load() {
		err = s.readWhole(ctx, filter, field, live, fn)
	}
	return err
}

// chunks decodes a message's array field (content or reasoning); a
// document without it (reasoning, in documents older than it) has none.
type chunks struct {
	ConversationID bson.ObjectID `bson:"conversation_id"`
	Content        []string      `bson:"content"`
	Reasoning      []string      `bson:"reasoning"`
}

// of returns the chunks of field.
func (c *chunks) of(field string) []string {
	if field == "reasoning" {
		return c.Reasoning
	}
	return c.Content
}

// readSlices reads the chunks contentSlice at a time, checking the
// message's conversation with live after the first read.
func (s *Store) readSlices(ctx context.Context, filter bson.D, field string, live func(chunks) error, fn func(string) error) error {
	for skip := 0; ; skip += contentSlice {
		var d chunks
		proj := bson.D{{Key: field, Value: bson.D{{Key: "$slice", Value: bson.A{skip, contentSlice}}}}, {Key: "conversation_id", Value: 1}}
		err := s.messagesFor(ctx).FindOne(ctx, filter, options.FindOne().SetProjection(proj)).Decode(&d)
		if err != nil {
			// Deleted meanwhile too: ErrNotFound, not the end of a text
			// handed over in part.
			return mapErr(err)
		}
		if skip == 0 {
			if err := live(d); err != nil {
				return err
			}
		}
		got := d.of(field)
		if text := strings.Join(got, ""); text != "" {
			if err := fn(text); err != nil {
				return err
			}
		}
		if len(got) < contentSlice {
			return nil
		}
	}
}

// readWhole reads every chunk at once, checks the message's
// conversation with live, and hands them over in pieces.
func (s *Store) readWhole(ctx context.Context, filter bson.D, field string, live func(chunks) error, fn func(string) error) error {
	var d chunks
	proj := bson.D{{Key: field, Value: 1}, {Key: "conversation_id", Value: 1}}
	err := s.messagesFor(ctx).FindOne(ctx, filter, options.FindOne().SetProjection(proj)).Decode(&d)
	if err != nil {
		return mapErr(err)
	}
	if err := live(d); err != nil {
		return err
	}
	var piece strings.Builder
	for _, c := range d.of(field) {
		piece.WriteString(c)
		if piece.Len() >= persistence.ContentPieceBytes {
			if err := fn(piece.String()); err != nil {
				return err
			}
			piece.Reset()
		}
	}
	if piece.Len() > 0 {
		return fn(piece.String())
	}
	return nil
}

// isNotImplemented reports whether the server refused a command it does
// not implement (FerretDB's answer to some projections).
func isNotImplemented(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(238)
}

// probeID is the _id of the meta document ProbeWrite rewrites.
const probeID = "probe"

// ProbeWrite rewrites one small meta document (upsertMeta).
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := s.upsertMeta(ctx, probeID, bson.D{{Key: "at", Value: now()}}); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// upsertMeta sets fields on the meta document id, creating it when it is
// not there. Two upserts at once of a document not there can both try
// to insert it: MongoDB retries the one that lost, FerretDB fails it with
// a duplicate key, which is tried again here once (the document is there
// then: the update matches it).
func (s *Store) upsertMeta(ctx context.Context, id string, fields bson.D) error {
	upsert := func() error {
		_, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: fields}}, options.UpdateOne().SetUpsert(true))
		return err
	}
	err := upsert()
	if mongo.IsDuplicateKeyError(err) {
		err = upsert()
	}
	return err
}
