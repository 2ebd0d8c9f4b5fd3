package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/text/unicode/norm"

	"chatd/persistence"
)

// Page size limits of ListConversations.
const (
	defaultPageSize = 30
	maxPageSize     = 100
)

// CreateConversation stores c, filling ID and ClientID (when empty) and
// timestamps; ErrUnknownOwner, and nothing stored, when no user has
// c.OwnerID; ErrDuplicate when the owner has a conversation with that
// ClientID. The unique index on client_key decides between creations at
// once, on MongoDB and on FerretDB (whose unique indexes are the SQLite
// or PostgreSQL table's own), so exactly one of them is stored.
//
// Without transactions, the conversation is inserted first and its owner
// looked up after; when the owner is gone, the insert is undone, as
// InsertMessage undoes a message whose conversation is gone. DeleteUser
// deletes the user document before its last sweep of the owner's
// conversations, which makes this enough: see DeleteUser.
func (s *Store) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	owner, ok := objectID(c.OwnerID)
	if !ok {
		return fmt.Errorf("create conversation of user %q: %w", c.OwnerID, persistence.ErrUnknownOwner)
	}
	id, err := idOrNew(c.ID)
	if err != nil {
		return fmt.Errorf("create conversation: %w", err)
	}
	clientID := c.ClientID
	if clientID == "" {
		clientID = persistence.NewID()
	}
	t := now()
	d := conversationDoc{
		ID:           id,
		OwnerID:      owner,
		Title:        c.Title,
		Model:        c.Model,
		SystemPrompt: c.SystemPrompt,
		Params:       paramsDocOf(c.Params),
		ClientKey:    clientKey(owner, clientID),
		CreatedAt:    t,
		UpdatedAt:    t,
	}
	if _, err := s.conversations.InsertOne(ctx, d); err != nil {
		return fmt.Errorf("create conversation: %w", mapErr(err))
	}
	if err := s.userExists(ctx, owner); err != nil {
		err = fmt.Errorf("create conversation of user %s: %w", c.OwnerID, err)
		if rerr := s.removeConversation(ctx, id); rerr != nil {
			return fmt.Errorf("%w; the conversation %s is left stored: %w", err, id.Hex(), rerr)
		}
		return err
	}
	*c = d.conversation()
	return nil
}

// ConversationByClientID returns the owner's conversation with that
// ClientID, read on the primary: a retried creation that lost to another
// must find the winner's conversation, written a moment ago. One being
// deleted no longer has the client id (see DeleteConversation).
func (s *Store) ConversationByClientID(ctx context.Context, ownerID, clientID string) (persistence.Conversation, error) {
	owner, ok := objectID(ownerID)
	if !ok {
		return persistence.Conversation{}, fmt.Errorf("conversation with client id %q: %w", clientID, persistence.ErrNotFound)
	}
	var d conversationDoc
	err := s.convsPrimary.FindOne(ctx, bson.D{{Key: "client_key", Value: clientKey(owner, clientID)}, notDeleting}).Decode(&d)
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("conversation with client id %q: %w", clientID, mapErr(err))
	}
	return d.conversation(), nil
}

// userExists returns nil when the user id exists and is not being
// deleted, ErrUnknownOwner otherwise: one lookup by _id, on the primary
// (as every read of users), so that a user DeleteUser already marked or deleted is
// never found on a lagging secondary.
func (s *Store) userExists(ctx context.Context, id bson.ObjectID) error {
	err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}, notDeleting},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return persistence.ErrUnknownOwner
	}
	if err != nil {
		return fmt.Errorf("look up the owner: %w", err)
	}
	return nil
}

// removeConversation undoes the insert of a conversation whose owner is
// gone (or could not be looked up: the create fails, so it stores
// nothing), see undo.go. Its id was handed to nobody yet, so it holds no
// message. The error of its last try, logged, when it never succeeded.
func (s *Store) removeConversation(ctx context.Context, id bson.ObjectID) error {
	err := s.undo(ctx, func(ctx context.Context) error {
		_, err := s.conversations.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
	if err != nil {
		s.log.Error("mongodb: a conversation whose creation failed is left stored", "conversation", id.Hex(), "err", err)
		return fmt.Errorf("remove it: %w", err)
	}
	return nil
}

// ownedRef is a document id and its owner's.
type ownedRef struct{ id, owner bson.ObjectID }

// parseOwned parses both ids; ok is false when either is malformed (no
// such document can exist).
func parseOwned(ownerID, id string) (r ownedRef, ok bool) {
	owner, ok1 := objectID(ownerID)
	oid, ok2 := objectID(id)
	return ownedRef{id: oid, owner: owner}, ok1 && ok2
}

// filter selects the document only if the owner owns it.
func (r ownedRef) filter() bson.D {
	return bson.D{{Key: "_id", Value: r.id}, {Key: "owner_id", Value: r.owner}}
}

// ownedFilter is parseOwned's filter.
func ownedFilter(ownerID, id string) (f bson.D, ok bool) {
	r, ok := parseOwned(ownerID, id)
	return r.filter(), ok
}

// Conversation returns one conversation of the owner; ErrNotFound for one
// being deleted (as for every read of conversations: see
// DeleteConversation).
func (s *Store) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	filter, ok := ownedFilter(ownerID, id)
	if !ok {
		return persistence.Conversation{}, fmt.Errorf("conversation %s: %w", id, persistence.ErrNotFound)
	}
	var d conversationDoc
	if err := s.convsFor(ctx).FindOne(ctx, append(filter, notDeleting)).Decode(&d); err != nil {
		return persistence.Conversation{}, fmt.Errorf("conversation %s: %w", id, mapErr(err))
	}
	return d.conversation(), nil
}

// ListConversations returns a page of the owner's conversations, newest
// (updated_at, then _id) first, using a range filter on the cursor position
// rather than skip. A search matches a substring of the title or of any
// message of the conversation, both sides lower-cased (see lowerRegex).
func (s *Store) ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	limit := clampLimit(q.Limit)
	clauses := bson.A{}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return persistence.ConversationPage{}, fmt.Errorf("list conversations: %w", err)
		}
		clauses = append(clauses, c.after())
	}
	owner, ok := objectID(ownerID)
	if !ok {
		// Nobody owns anything under a malformed id.
		return persistence.ConversationPage{Conversations: []persistence.Conversation{}}, nil
	}
	if q.Search != "" {
		match, err := s.searchFilter(ctx, owner, fold(q.Search))
		if err != nil {
			return persistence.ConversationPage{}, fmt.Errorf("list conversations: %w", err)
		}
		clauses = append(clauses, match)
	}
	filter := bson.D{{Key: "owner_id", Value: owner}, notDeleting}
	if len(clauses) > 0 {
		filter = append(filter, bson.E{Key: "$and", Value: clauses})
	}
	return s.conversationPage(ctx, filter, limit)
}

// clampLimit applies ListQuery's documented limits.
func clampLimit(n int) int {
	switch {
	case n == 0:
		return defaultPageSize
	case n < 1:
		return 1
	case n > maxPageSize:
		return maxPageSize
	}
	return n
}

// conversationPage runs filter sorted newest first and reads limit+1
// documents to know whether another page follows.
func (s *Store) conversationPage(ctx context.Context, filter bson.D, limit int) (persistence.ConversationPage, error) {
	opts := options.Find().
		SetSort(bson.D{{Key: "updated_at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit + 1))
	cur, err := s.convsFor(ctx).Find(ctx, filter, opts)
	if err != nil {
		return persistence.ConversationPage{}, fmt.Errorf("list conversations: %w", err)
	}
	var docs []conversationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return persistence.ConversationPage{}, fmt.Errorf("list conversations: %w", err)
	}
	page := persistence.ConversationPage{Conversations: make([]persistence.Conversation, 0, min(len(docs), limit))}
	for i, d := range docs {
		if i == limit {
			last := docs[limit-1]
			page.NextCursor = pageCursor{updatedAt: last.UpdatedAt, id: last.ID}.encode()
			break
		}
		page.Conversations = append(page.Conversations, d.conversation())
	}
	return page, nil
}

// searchFilter is the clause matching the owner's conversations whose title
// or one of whose messages contains term (lower-cased, as the texts are
// compared).
func (s *Store) searchFilter(ctx context.Context, owner bson.ObjectID, term string) (bson.D, error) {
	ids, err := s.conversationsWithText(ctx, owner, term)
	if err != nil {
		return nil, fmt.Errorf("search messages: %w", err)
	}
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "title", Value: lowerRegex(term)}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
	}}}, nil
}

// conversationsWithText returns the ids of the owner's conversations with a
// message whose lower-cased text contains term (lower-cased).
//
// A message's text is an array of chunks, and the database matches a regex
// against each element, not against the joined text. A run of at most
// maxPieceRunes characters without whitespace lies inside one chunk or,
// when chunk boundaries cut it, inside one element of split_words (see
// maxSplitRunes), so for such a term matching the elements finds every
// message holding it. Any other term (with whitespace, or longer) can lie
// across chunks: the database finds the messages where it lies inside one
// element, and the candidates whose elements contain each of its pieces
// (searchPieces: its words, a longer word by its first and last
// maxPieceRunes characters, each inside one element of a message holding
// the term) are read and checked against their joined text.
//
// With the text index (MongoDB, see textFilter), a term holding a whole
// word first narrows both reads to the user's messages that hold that
// word. Where the index is missing though Open found it (another instance
// is replacing it: see ensureTextIndex), the server refuses the $text
// query and the search runs again without it.
func (s *Store) conversationsWithText(ctx context.Context, owner bson.ObjectID, term string) ([]bson.ObjectID, error) {
	index := s.textIndex.Load()
	ids, err := s.conversationsWithTextIndex(ctx, owner, term, index)
	if index && indexNotFound(err) {
		ids, err = s.conversationsWithTextIndex(ctx, owner, term, false)
	}
	return ids, err
}

// conversationsWithTextIndex is conversationsWithText, using the text
// index when index is set.
func (s *Store) conversationsWithTextIndex(ctx context.Context, owner bson.ObjectID, term string, index bool) ([]bson.ObjectID, error) {
	ids, err := s.groupConversations(ctx, inChunksFilter(owner, term, index))
	pieces := searchPieces(term)
	if err != nil || len(pieces) == 0 || (len(pieces) == 1 && pieces[0] == term) {
		return ids, err
	}
	more, err := s.verifyText(ctx, acrossChunksFilter(owner, term, index, ids), term)
	return append(ids, more...), err
}

// inChunksFilter is the filter of the messages of owner where term lies
// inside one chunk or split word (conversationsWithText's first read).
func inChunksFilter(owner bson.ObjectID, term string, index bool) bson.D {
	return append(textFilter(owner, term, index), elementsMatch(term))
}

// acrossChunksFilter is the filter of the candidates for a term that may
// lie across chunks, outside the conversations found: the messages of
// owner whose elements contain each of its pieces (conversationsWithText's
// second read).
func acrossChunksFilter(owner bson.ObjectID, term string, index bool, found []bson.ObjectID) bson.D {
	all := bson.A{}
	for _, p := range searchPieces(term) {
		all = append(all, bson.D{elementsMatch(p)})
	}
	return append(textFilter(owner, term, index),
		bson.E{Key: "conversation_id", Value: bson.D{{Key: "$nin", Value: found}}},
		bson.E{Key: "$and", Value: all})
}

// maxSearchWords bounds the piece clauses of a search for a term that may
// lie across chunks: each is two regexes matched against every chunk of
// the user's messages, and a query of 200 characters (the API's bound) can
// hold 100 words. The pieces only narrow which messages are read
// (verifyText checks the whole term), so leaving some out changes no
// answer. The SQLite store bounds its index terms alike (maxFTSTerms, 8).
const maxSearchWords = 8

// searchPieces returns the distinct pieces of term that every message
// holding it holds each inside one chunk or split word: its words (runs
// without whitespace), a word of more than maxPieceRunes characters by
// its first and last maxPieceRunes (see maxPieceRunes). At most
// maxSearchWords of them: the longest (the fewest messages hold them), in
// the order they come in term. A term of one word of at most
// maxPieceRunes characters is its only piece. A term made only of white
// space has no word: its pieces are its characters, each of which lies
// inside one chunk, so a run of them across a cut is read and checked
// (verifyText) like any other term that may lie across chunks.
func searchPieces(term string) []string {
	var pieces []string
	seen := map[string]bool{}
	words := strings.FieldsFunc(term, unicode.IsSpace)
	if len(words) == 0 {
		words = strings.Split(term, "")
	}
	for _, w := range words {
		for _, p := range wordPieces(w) {
			if !seen[p] {
				seen[p] = true
				pieces = append(pieces, p)
			}
		}
	}
	if len(pieces) <= maxSearchWords {
		return pieces
	}
	byLength := slices.Clone(pieces)
	slices.SortStableFunc(byLength, func(a, b string) int {
		return utf8.RuneCountInString(b) - utf8.RuneCountInString(a)
	})
	keep := map[string]bool{}
	for _, p := range byLength[:maxSearchWords] {
		keep[p] = true
	}
	return slices.DeleteFunc(pieces, func(p string) bool { return !keep[p] })
}

// wordPieces is word, or its first and last maxPieceRunes characters
// when it is longer. Characters are counted decomposed (NFD): a word is
// stored as it was sent, maybe decomposed (é as e and an accent, two
// characters), and the bound holds for the characters stored.
func wordPieces(word string) []string {
	if decomposedRunes(word) <= maxPieceRunes {
		return []string{word}
	}
	return []string{firstDecomposed(word, maxPieceRunes), lastDecomposed(word, maxPieceRunes)}
}

// decomposedRunes is how many characters s has decomposed (NFD).
func decomposedRunes(s string) int {
	return utf8.RuneCountInString(norm.NFD.String(s))
}

// firstDecomposed is the longest start of s of at most n characters decomposed.
func firstDecomposed(s string, n int) string {
	for i, r := range s {
		if n -= decomposedRunes(string(r)); n < 0 {
			return s[:i]
		}
	}
	return s
}

// lastDecomposed is the longest end of s of at most n characters decomposed.
func lastDecomposed(s string, n int) string {
	i := len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if n -= decomposedRunes(string(r)); n < 0 {
			break
		}
		i -= size
	}
	return s[i:]
}

// elementsMatch is the clause matching messages with a chunk or split word
// whose lower-cased form contains term (lower-cased).
func elementsMatch(term string) bson.E {
	re := lowerRegex(term)
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "content", Value: re}},
		bson.D{{Key: "split_words", Value: re}},
	}}
}

// groupConversations returns the distinct conversation ids of the messages
// matching filter. It groups in an aggregation rather than using the
// distinct command: FerretDB's distinct refuses maxTimeMS, which the driver
// adds whenever the context has a deadline.
func (s *Store) groupConversations(ctx context.Context, filter bson.D) ([]bson.ObjectID, error) {
	pipeline := bson.A{
		bson.D{{Key: "$match", Value: filter}},
		bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$conversation_id"}}}},
	}
	cur, err := s.messagesFor(ctx).Aggregate(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	var groups []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &groups); err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	return ids, nil
}

// verifyText reads the messages matching filter and returns the distinct
// conversation ids of those whose folded joined text contains term
// (folded: fold).
func (s *Store) verifyText(ctx context.Context, filter bson.D, term string) ([]bson.ObjectID, error) {
	cur, err := s.messagesFor(ctx).Find(ctx, filter,
		options.Find().SetProjection(bson.D{{Key: "conversation_id", Value: 1}, {Key: "content", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	seen := map[bson.ObjectID]bool{}
	var ids []bson.ObjectID
	for cur.Next(ctx) {
		var d struct {
			ConversationID bson.ObjectID `bson:"conversation_id"`
			Content        []string      `bson:"content"`
		}
		if err := cur.Decode(&d); err != nil {
			return nil, err
		}
		if !seen[d.ConversationID] && strings.Contains(fold(strings.Join(d.Content, "")), term) {
			seen[d.ConversationID] = true
			ids = append(ids, d.ConversationID)
		}
	}
	return ids, cur.Err()
}

// UpdateConversation applies p and returns the result. UpdatedAt moves to
// now, or 1 ms past the stored time when that is not before now (a clock
// ahead wrote it): forward on every update (advanceConversation).
//
// With p.IfTitle set, the title is part of the update's filter: MongoDB
// checks it and writes in one atomic step on the document, so a rename
// landing first makes this update match nothing (ErrConflict, after a read
// on the primary that tells it from an unknown id and from a stored time
// ahead: advanceConversation). FerretDB v1 applies an update as a
// read then a write with no lock between: there the check holds against
// the writes of this process only (they take the document's lock, locks.go),
// not against another instance's write landing in between.
func (s *Store) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	ref, ok := parseOwned(ownerID, id)
	if !ok {
		return persistence.Conversation{}, fmt.Errorf("update conversation %s: %w", id, persistence.ErrNotFound)
	}
	unlock, err := s.locks.lock(ctx, ref.id)
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("update conversation %s: %w", id, err)
	}
	d, err := s.advanceConversation(ctx, append(ref.filter(), notDeleting), p.IfTitle, patchFields(p), now())
	unlock()
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("update conversation %s: %w", id, mapErr(err))
	}
	return d.conversation(), nil
}

// patchFields is the $set document of p.
func patchFields(p persistence.ConversationPatch) bson.D {
	var set bson.D
	if p.Title != nil {
		set = append(set, bson.E{Key: "title", Value: *p.Title})
	}
	if p.Model != nil {
		set = append(set, bson.E{Key: "model", Value: *p.Model})
	}
	if p.SystemPrompt != nil {
		set = append(set, bson.E{Key: "system_prompt", Value: *p.SystemPrompt})
	}
	if p.Params != nil {
		set = append(set, bson.E{Key: "params", Value: paramsDocOf(p.Params)})
	}
	return set
}
