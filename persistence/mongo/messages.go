package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// InsertMessage stores m, filling ID and ClientMessageID (when empty) and
// CreatedAt/UpdatedAt (when zero), then moves the conversation's UpdatedAt
// forward to m.CreatedAt, or both past the conversation's stored time when
// that is not before it (touchConversation). The message is written
// first: if the owner has no such conversation, or it or the owner is
// being deleted (touchOwned), it is removed again and ErrNotFound returned; when that move fails, it is removed too and the
// error returned. A removal
// failing past Options.UndoTimeout (see undo.go) is part of the error.
// An insert that failed (other than on a duplicate key) or whose removal
// failed may be stored all the same, possibly after its conversation's
// deletion: its conversation is noted for the deletion sweep (unsure.go).
func (s *Store) InsertMessage(ctx context.Context, m *persistence.Message) error {
	_, err := s.insertTouching(ctx, m)
	return err
}

// InsertTouching stores ms as InsertMessage does, one after the other,
// stopping at the first failure, and returns the conversation of the last
// of ms as its insert left it (persistence.TouchingInserter): the update
// that moves it forward returns it (FindOneAndUpdate), no other query.
func (s *Store) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	var c persistence.Conversation
	for _, m := range ms {
		var err error
		if c, err = s.insertTouching(ctx, m); err != nil {
			return persistence.Conversation{}, err
		}
	}
	return c, nil
}

// insertTouching is InsertMessage, returning m's conversation as the
// insert left it.
func (s *Store) insertTouching(ctx context.Context, m *persistence.Message) (persistence.Conversation, error) {
	d, err := newMessageDoc(m)
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("insert message: %w", err)
	}
	if err := s.insertMessageDoc(ctx, d); err != nil {
		if err = mapErr(err); !errors.Is(err, persistence.ErrDuplicate) {
			s.noteUnsureInsert(d.ConversationID)
		}
		return persistence.Conversation{}, fmt.Errorf("insert message: %w", err)
	}
	conv, err := s.touchOwned(ctx, d)
	if err != nil {
		err = fmt.Errorf("insert message in conversation %s: %w", m.ConversationID, err)
		if rerr := s.removeMessage(ctx, d.ID); rerr != nil {
			s.noteUnsureInsert(d.ConversationID)
			return persistence.Conversation{}, fmt.Errorf("%w; the message %s is left stored: %w", err, d.ID.Hex(), rerr)
		}
		return persistence.Conversation{}, err
	}
	if d.Status == string(persistence.StatusStreaming) {
		s.tails.set(d.ID, storedOf(d.Content, d.Reasoning))
	}
	*m = d.message()
	return conv.conversation(), nil
}

// insertMessageDoc inserts d (through Options.insertMessage in tests).
func (s *Store) insertMessageDoc(ctx context.Context, d *messageDoc) error {
	insert := func(ctx context.Context) error {
		_, err := s.messages.InsertOne(ctx, d)
		return err
	}
	if s.insertHook != nil {
		return s.insertHook(ctx, insert)
	}
	return insert(ctx)
}

// touchOwned is touchConversation once d's owner is found not being
// deleted (MarkUserDeleting, DeleteUser); ErrNotFound when they are, as
// for a conversation being deleted. The owner is read after d's insert,
// as touchConversation reads the conversation's mark: an account
// deletion marks the user before it reads their running answers, which
// then hold d unless this read saw the mark (d is then removed).
func (s *Store) touchOwned(ctx context.Context, d *messageDoc) (conversationDoc, error) {
	if err := s.userExists(ctx, d.OwnerID); err != nil {
		if errors.Is(err, persistence.ErrUnknownOwner) {
			err = fmt.Errorf("owner %s: %w", d.OwnerID.Hex(), persistence.ErrNotFound)
		}
		return conversationDoc{}, err
	}
	return s.touchConversation(ctx, d)
}

// touchConversation moves the conversation of d forward to d.CreatedAt
// and returns it so moved; ErrNotFound when the owner has no such conversation or it is being
// deleted (see DeleteConversation: no message enters it then). When the
// conversation's stored time is at or after d.CreatedAt (written by a
// clock ahead of this process's: another instance's, or this host's before
// it stepped back), it goes 1 ms past that instead and the message is
// timed with it (d too), so that a message never sorts before those
// already in its conversation, whose times its own is at or after.
func (s *Store) touchConversation(ctx context.Context, d *messageDoc) (conversationDoc, error) {
	var c conversationDoc
	unlock, err := s.locks.lock(ctx, d.ConversationID)
	if err != nil {
		return c, err
	}
	c, err = s.advanceConversation(ctx, bson.D{{Key: "_id", Value: d.ConversationID}, {Key: "owner_id", Value: d.OwnerID}, notDeleting},
		nil, nil, d.CreatedAt)
	unlock()
	if err != nil {
		return c, mapErr(err) // ErrNoDocuments: ErrNotFound
	}
	if c.UpdatedAt.Equal(d.CreatedAt) {
		return c, nil
	}
	return c, s.retimeMessage(ctx, d, c.UpdatedAt)
}

// retimeMessage moves the message d, just inserted, to at (and d with it).
// ErrNotFound when it is gone: its conversation's deletion began meanwhile.
func (s *Store) retimeMessage(ctx context.Context, d *messageDoc, at time.Time) error {
	updated := d.UpdatedAt
	if updated.Before(at) {
		updated = at
	}
	res, err := s.messages.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "created_at", Value: at}, {Key: "updated_at", Value: updated}}}})
	if err != nil {
		return fmt.Errorf("time the message after its conversation: %w", err)
	}
	if res.MatchedCount == 0 {
		return persistence.ErrNotFound
	}
	d.CreatedAt, d.UpdatedAt = at, updated
	return nil
}

// removeMessage undoes an insert whose conversation update failed (see
// undo.go); the error of its last try, logged, when it never succeeded.
func (s *Store) removeMessage(ctx context.Context, id bson.ObjectID) error {
	err := s.undo(ctx, func(ctx context.Context) error {
		_, err := s.messages.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
	if err != nil {
		s.log.Error("mongodb: a message whose insert failed is left stored", "message", id.Hex(), "err", err)
		return fmt.Errorf("remove it: %w", err)
	}
	return nil
}

// newMessageDoc validates m and fills its defaults.
func newMessageDoc(m *persistence.Message) (*messageDoc, error) {
	conv, ok1 := objectID(m.ConversationID)
	owner, ok2 := objectID(m.OwnerID)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("conversation %q of owner %q: %w", m.ConversationID, m.OwnerID, persistence.ErrNotFound)
	}
	id, err := idOrNew(m.ID)
	if err != nil {
		return nil, err
	}
	d := messageDoc{
		ID: id, ConversationID: conv, OwnerID: owner,
		Role: string(m.Role), Content: chunksOf(m.Content), SplitWords: []string{}, Model: m.Model,
		Reasoning: chunksOf(m.Reasoning), OmittedMessages: m.OmittedMessages,
		Status: string(m.Status), FinishReason: m.FinishReason, Usage: usageDocOf(m.Usage), Error: m.Error, ErrorCode: m.ErrorCode,
		ClientMessageID: m.ClientMessageID,
		CreatedAt:       normTime(m.CreatedAt), UpdatedAt: normTime(m.UpdatedAt),
	}
	if m.ParentID != "" {
		parent, ok := objectID(m.ParentID)
		if !ok {
			return nil, fmt.Errorf("parent message %q: %w", m.ParentID, persistence.ErrNotFound)
		}
		d.ParentID = &parent
	}
	if d.ClientMessageID == "" {
		d.ClientMessageID = persistence.NewID()
	}
	if m.CreatedAt.IsZero() {
		d.CreatedAt = now()
	}
	if m.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	return &d, nil
}

// Message returns one message of the owner; ErrNotFound when its
// conversation is being deleted (msgLive), as for every read of messages.
func (s *Store) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	filter, ok := ownedFilter(ownerID, id)
	if !ok {
		return persistence.Message{}, fmt.Errorf("message %s: %w", id, persistence.ErrNotFound)
	}
	m, err := s.findMessage(ctx, s.messagesFor(ctx), filter)
	if err == nil {
		m, err = s.msgLive(ctx, m)
	}
	if err != nil {
		return m, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}

// MessageByClientID returns the owner's message with that client id, read
// on the primary: a repeated send finds by it whether the first one was
// stored (a moment ago, on another instance perhaps), and stores it again
// when not.
func (s *Store) MessageByClientID(ctx context.Context, ownerID, clientMessageID string) (persistence.Message, error) {
	owner, ok := objectID(ownerID)
	if !ok {
		return persistence.Message{}, fmt.Errorf("message with client id %q: %w", clientMessageID, persistence.ErrNotFound)
	}
	m, err := s.findMessage(ctx, s.messagesPrimary, bson.D{{Key: "owner_id", Value: owner}, {Key: "client_message_id", Value: clientMessageID}})
	if err == nil {
		m, err = s.msgLive(ctx, m)
	}
	if err != nil {
		return m, fmt.Errorf("message with client id %q: %w", clientMessageID, err)
	}
	return m, nil
}

// LatestAnswer returns the newest answer to message parentID of the
// owner's conversation, through the conversation's index by creation.
func (s *Store) LatestAnswer(ctx context.Context, ownerID, conversationID, parentID string) (persistence.Message, error) {
	ref, ok := parseOwned(ownerID, conversationID)
	parent, pok := objectID(parentID)
	if !ok || !pok {
		return persistence.Message{}, fmt.Errorf("latest answer to message %s: %w", parentID, persistence.ErrNotFound)
	}
	filter := bson.D{{Key: "conversation_id", Value: ref.id}, {Key: "owner_id", Value: ref.owner},
		{Key: "parent_id", Value: parent}, {Key: "role", Value: string(persistence.RoleAssistant)}}
	var d messageDoc
	err := s.messagesFor(ctx).FindOne(ctx, filter,
		options.FindOne().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}})).Decode(&d)
	var m persistence.Message
	if err = mapErr(err); err == nil {
		m, err = s.msgLive(ctx, d.message())
	}
	if err != nil {
		return persistence.Message{}, fmt.Errorf("latest answer to message %s: %w", parentID, err)
	}
	return m, nil
}

// findMessage reads the message filter finds from coll (s.messages, or
// s.messagesPrimary for a state that must not lag a write just made).
func (s *Store) findMessage(ctx context.Context, coll *mongo.Collection, filter bson.D) (persistence.Message, error) {
	var d messageDoc
	if err := coll.FindOne(ctx, filter).Decode(&d); err != nil {
		return persistence.Message{}, mapErr(err)
	}
	return d.message(), nil
}

// Messages returns every message of a conversation of the owner (all
// branches), oldest first; ErrNotFound when the owner has no such
// conversation or it is being deleted (checked after the messages are
// read: convLive).
func (s *Store) Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	owner, ok1 := objectID(ownerID)
	conv, ok2 := objectID(conversationID)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("messages of conversation %s: %w", conversationID, persistence.ErrNotFound)
	}
	out, err := s.findMessages(ctx, owner, conv)
	if err != nil {
		return nil, fmt.Errorf("messages of conversation %s: %w", conversationID, err)
	}
	if err := s.convLive(ctx, owner, conv, len(out) > 0); err != nil {
		return nil, fmt.Errorf("messages of conversation %s: %w", conversationID, err)
	}
	return out, nil
}

// findMessages reads the messages of conversation conv of owner, oldest first.
func (s *Store) findMessages(ctx context.Context, owner, conv bson.ObjectID) ([]persistence.Message, error) {
	return s.findMessageList(ctx,
		bson.D{{Key: "conversation_id", Value: conv}, {Key: "owner_id", Value: owner}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// StreamingConversations returns the ids of the owner's conversations with
// a streaming message, each once (grouped by the server: FerretDB's
// distinct refuses maxTimeMS, see groupConversations); none for a
// malformed owner id.
func (s *Store) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	owner, ok := objectID(ownerID)
	if !ok {
		return nil, nil
	}
	oids, err := s.groupConversations(ctx, streamingFilter(owner))
	if err == nil && len(oids) > 0 {
		// Leave out the conversations being deleted: one read of the few
		// found, by id.
		oids, err = findIDs(ctx, s.convsFor(ctx),
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: oids}}}, {Key: "owner_id", Value: owner}, notDeleting})
	}
	if err != nil {
		return nil, fmt.Errorf("streaming conversations of %s: %w", ownerID, err)
	}
	ids := make([]string, len(oids))
	for i, oid := range oids {
		ids[i] = oid.Hex()
	}
	return ids, nil
}

// InterruptStreaming marks every message still streaming as interrupted,
// with the restart as its error (persistence.RestartError), and returns
// how many changed. A process that took the single-process lease
// and lost it is refused: the answers streaming are another's
// (TakeSoloLease).
func (s *Store) InterruptStreaming(ctx context.Context) (int, error) {
	if err := s.soloErr(); err != nil {
		return 0, fmt.Errorf("interrupt streaming messages: %w", err)
	}
	unlock, err := s.locks.lockAll(ctx)
	if err != nil {
		return 0, fmt.Errorf("interrupt streaming messages: %w", err)
	}
	defer unlock()
	defer s.tails.clear()
	res, err := s.messages.UpdateMany(ctx,
		bson.D{{Key: "status", Value: string(persistence.StatusStreaming)}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: string(persistence.StatusInterrupted)},
			{Key: "updated_at", Value: now()},
			{Key: "error", Value: persistence.RestartError},
			{Key: "error_code", Value: persistence.RestartErrorCode},
		}}})
	if err != nil {
		return 0, fmt.Errorf("interrupt streaming messages: %w", err)
	}
	return int(res.ModifiedCount), nil
}

// InterruptMessage marks one message of the owner interrupted if it is
// still streaming, and returns it as stored; ErrNotFound, as Message, when
// its conversation is being deleted.
func (s *Store) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	r, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.Message{}, fmt.Errorf("interrupt message %s: %w", id, persistence.ErrNotFound)
	}
	if at.IsZero() {
		at = now()
	}
	set := bson.D{{Key: "status", Value: string(persistence.StatusInterrupted)}, {Key: "updated_at", Value: normTime(at)}}
	if reason != "" {
		set = append(set, bson.E{Key: "error", Value: reason})
	}
	filter := append(r.filter(), bson.E{Key: "status", Value: string(persistence.StatusStreaming)})
	unlock, err := s.locks.lock(ctx, r.id)
	if err != nil {
		return persistence.Message{}, fmt.Errorf("interrupt message %s: %w", id, err)
	}
	_, err = s.messages.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}})
	unlock()
	s.tails.forget(r.id)
	if err != nil {
		return persistence.Message{}, fmt.Errorf("interrupt message %s: %w", id, mapErr(err))
	}
	// From the primary: a lagging secondary (a URI's readPreference) could
	// still show the message streaming, and the caller reports what it reads.
	m, err := s.findMessage(ctx, s.messagesPrimary, r.filter())
	if err == nil {
		// A message of a conversation being deleted is gone, as Message
		// answers: the caller (the hub's sweep or takeover) reports no
		// stored end of an answer nobody can read. The mark is read on
		// the primary too, as the message was.
		m, err = s.msgLive(persistence.WithLatest(ctx), m)
	}
	if err != nil {
		return m, fmt.Errorf("interrupt message %s: %w", id, err)
	}
	return m, nil
}

// SetOmittedMessages sets the omitted-message count of the owner's
// streaming message id (see persistence.Messages).
func (s *Store) SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error {
	r, ok := parseOwned(ownerID, id)
	if !ok {
		return fmt.Errorf("set omitted messages of %s: %w", id, persistence.ErrNotFound)
	}
	filter := append(r.filter(), bson.E{Key: "status", Value: string(persistence.StatusStreaming)})
	unlock, err := s.locks.lock(ctx, r.id)
	if err != nil {
		return fmt.Errorf("set omitted messages of %s: %w", id, err)
	}
	res, err := s.messages.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "omitted_messages", Value: n}}}})
	unlock()
	if err == nil && res.MatchedCount == 0 {
		// Unknown, another owner's, or no longer streaming.
		_, err = s.findMessage(ctx, s.messagesPrimary, r.filter())
	}
	if err != nil {
		return fmt.Errorf("set omitted messages of %s: %w", id, mapErr(err))
	}
	return nil
}
