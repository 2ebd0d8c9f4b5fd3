package mongo

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
)

// userDoc is a document of the users collection.
type userDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Email        string        `bson:"email"` // unique index
	Name         string        `bson:"name"`
	PasswordHash string        `bson:"password_hash"`
	TokenVersion int64         `bson:"token_version"`
	CreatedAt    time.Time     `bson:"created_at"`
	UpdatedAt    time.Time     `bson:"updated_at"`
	// DeletingAt is when DeleteUser, or MarkUserDeleting before it (which
	// keeps the password hash: DeleteUser's mark clears it), marked the
	// user as being deleted; absent on a live user. Every user read skips
	// a marked user (see notDeleting), and FinishDeletions finishes their
	// deletion (MarkUserDeleting's once Options.DeletionGrace old).
	DeletingAt *time.Time `bson:"deleting_at,omitempty"`
}

// notDeleting selects the users DeleteUser has not marked, and the
// conversations DeleteConversation has not marked (the same field).
var notDeleting = bson.E{Key: "deleting_at", Value: bson.D{{Key: "$exists", Value: false}}}

// conversationDoc is a document of the conversations collection.
type conversationDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	OwnerID      bson.ObjectID `bson:"owner_id"`
	Title        string        `bson:"title"`
	Model        string        `bson:"model"`
	SystemPrompt string        `bson:"system_prompt"`
	Params       *paramsDoc    `bson:"params,omitempty"` // absent: the model's defaults
	// ClientKey is the owner's id (hex), "/" and the conversation's
	// ClientID: one field, so that its unique index can be sparse
	// (clientKeyIndex). Absent in conversations created before it.
	ClientKey string    `bson:"client_key,omitempty"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedAt time.Time `bson:"updated_at"`
	// DeletingAt is when DeleteConversation marked the conversation as
	// being deleted (taking its ClientKey off); absent on a live one.
	// Every read of it skips a marked one (notDeleting), and
	// FinishDeletions finishes its deletion.
	DeletingAt *time.Time `bson:"deleting_at,omitempty"`
}

// clientKey is the ClientKey of the owner's conversation with clientID.
func clientKey(owner bson.ObjectID, clientID string) string {
	return owner.Hex() + "/" + clientID
}

// messageDoc is a document of the messages collection. Every field is always
// written, in particular both fields of the unique (owner_id,
// client_message_id) index.
type messageDoc struct {
	ID              bson.ObjectID  `bson:"_id"`
	ConversationID  bson.ObjectID  `bson:"conversation_id"`
	OwnerID         bson.ObjectID  `bson:"owner_id"`
	ParentID        *bson.ObjectID `bson:"parent_id"` // null for a root message
	Role            string         `bson:"role"`
	Content         []string       `bson:"content"`     // chunks, joined when read
	SplitWords      []string       `bson:"split_words"` // words cut by a chunk boundary, up to maxSplitRunes characters each side
	Reasoning       []string       `bson:"reasoning"`   // chunks like content; absent in documents older than it
	OmittedMessages int            `bson:"omitted_messages"`
	Model           string         `bson:"model"`
	Status          string         `bson:"status"`
	FinishReason    string         `bson:"finish_reason"`
	Usage           *usageDoc      `bson:"usage"`
	Error           string         `bson:"error"`
	ErrorCode       string         `bson:"error_code"` // absent in documents older than schema 2: read as ""
	ClientMessageID string         `bson:"client_message_id"`
	CreatedAt       time.Time      `bson:"created_at"`
	UpdatedAt       time.Time      `bson:"updated_at"`
}

// usageDoc is the token accounting of a message.
type usageDoc struct {
	PromptTokens     int `bson:"prompt_tokens"`
	CompletionTokens int `bson:"completion_tokens"`
	TotalTokens      int `bson:"total_tokens"`
}

// objectID parses a persistence id. Only the lower-case form NewID produces
// is accepted, so an id read back is byte for byte the id written.
func objectID(id string) (bson.ObjectID, bool) {
	if !persistence.ValidID(id) {
		return bson.ObjectID{}, false
	}
	oid, err := bson.ObjectIDFromHex(id)
	return oid, err == nil
}

// newObjectID mints a persistence id as an ObjectID.
func newObjectID() bson.ObjectID {
	oid, _ := objectID(persistence.NewID()) // NewID always gives a valid id
	return oid
}

// idOrNew parses id, or mints one when id is empty.
func idOrNew(id string) (bson.ObjectID, error) {
	if id == "" {
		return newObjectID(), nil
	}
	oid, ok := objectID(id)
	if !ok {
		return oid, fmt.Errorf("invalid id %q", id)
	}
	return oid, nil
}

// clock hands out strictly increasing millisecond timestamps, shared by
// every Store of the process. BSON dates have millisecond resolution, and
// records written one after another in the same millisecond (a question and
// its answer placeholder, a burst of new conversations) must still sort in
// the order they were written. Ids alone cannot be trusted to break the tie:
// callers may supply ids minted by another process, and NewID's counter
// starts at a random value and wraps. Under more than
// one timestamped write per millisecond, sustained, the clock runs ahead of
// the wall clock by the backlog and catches up when the load drops.
var clock struct {
	mu   sync.Mutex
	last int64 // Unix milliseconds of the last timestamp handed out
}

// now returns the current time as the store keeps it (UTC, milliseconds),
// later than any earlier result in this process.
func now() time.Time {
	ms := time.Now().UnixMilli()
	clock.mu.Lock()
	if ms <= clock.last {
		ms = clock.last + 1
	}
	clock.last = ms
	clock.mu.Unlock()
	return time.UnixMilli(ms).UTC()
}

// normTime is t as a BSON date reads back: UTC, millisecond precision.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func (d userDoc) user() persistence.User {
	return persistence.User{
		ID:           d.ID.Hex(),
		Email:        d.Email,
		Name:         d.Name,
		PasswordHash: d.PasswordHash,
		TokenVersion: d.TokenVersion,
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
	}
}

func (d conversationDoc) conversation() persistence.Conversation {
	return persistence.Conversation{
		ID:           d.ID.Hex(),
		OwnerID:      d.OwnerID.Hex(),
		Title:        d.Title,
		Model:        d.Model,
		SystemPrompt: d.SystemPrompt,
		Params:       d.Params.params(),
		ClientID:     strings.TrimPrefix(d.ClientKey, clientKey(d.OwnerID, "")),
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
	}
}

func (d messageDoc) message() persistence.Message {
	m := persistence.Message{
		ID:              d.ID.Hex(),
		ConversationID:  d.ConversationID.Hex(),
		OwnerID:         d.OwnerID.Hex(),
		Role:            persistence.Role(d.Role),
		Content:         strings.Join(d.Content, ""),
		Reasoning:       strings.Join(d.Reasoning, ""),
		OmittedMessages: d.OmittedMessages,
		Model:           d.Model,
		Status:          persistence.Status(d.Status),
		FinishReason:    d.FinishReason,
		Error:           d.Error,
		ErrorCode:       d.ErrorCode,
		ClientMessageID: d.ClientMessageID,
		CreatedAt:       d.CreatedAt,
		UpdatedAt:       d.UpdatedAt,
	}
	if d.ParentID != nil {
		m.ParentID = d.ParentID.Hex()
	}
	if d.Usage != nil {
		m.Usage = &persistence.Usage{
			PromptTokens:     d.Usage.PromptTokens,
			CompletionTokens: d.Usage.CompletionTokens,
			TotalTokens:      d.Usage.TotalTokens,
		}
	}
	return m
}

// usageDocOf converts u; nil stays nil.
func usageDocOf(u *persistence.Usage) *usageDoc {
	if u == nil {
		return nil
	}
	return &usageDoc{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

// chunksOf is the initial content array of a message.
func chunksOf(content string) []string {
	if content == "" {
		return []string{}
	}
	return []string{content}
}
