// Package api serves the REST routes of docs/api.md other than accounts:
// conversations (list, create, read, rename, delete, export), models, and
// health. Every conversation route is scoped to the signed-in user: another
// user's id answers 404 exactly like an unknown one.
package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/httperr"
)

// Live is the part of the hub the REST API uses.
type Live interface {
	// ActiveAnswer returns the answer of ownerID's conversation running
	// now (on this instance or, in a cluster, another), or "": nothing
	// runs, or the bus could not say before ctx ended.
	ActiveAnswer(ctx context.Context, ownerID, conversationID string) string
	// CancelConversation stops the conversation's running answer (before a delete).
	CancelConversation(ownerID, conversationID string)
	// ConversationChanged tells every connection of the owner that a
	// conversation was "created", "updated" or "deleted".
	ConversationChanged(ownerID, action string, c persistence.Conversation)
}

// Conversation change actions passed to Live.ConversationChanged.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = protocol.ActionDeleted // told with the conversation's id alone
)

// NoLive is the Live used when no hub is wired: nothing runs, nobody is told.
type NoLive struct{}

// ActiveAnswer returns "".
func (NoLive) ActiveAnswer(context.Context, string, string) string { return "" }

// CancelConversation does nothing.
func (NoLive) CancelConversation(string, string) {}

// ConversationChanged does nothing.
func (NoLive) ConversationChanged(string, string, persistence.Conversation) {}

// ownerID returns the signed-in user's id; routes using it sit behind
// auth.Authenticator.Middleware.
func ownerID(c *gin.Context) string {
	id, _ := auth.IdentityFrom(c)
	return id.UserID
}

// conversationID returns the :id route parameter, or answers 400 and
// returns false when it is not an id.
func conversationID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !persistence.ValidID(id) {
		httperr.AbortError(c, httperr.BadRequest("malformed conversation id"))
		return "", false
	}
	return id, true
}

// invalidCursor is the problem of a malformed list cursor (not what the
// store's encoding makes, or over MaxCursorBytes): 400 invalid_field, as
// for the list's other parameters. Cursors are not signed: one altered
// into another well-formed cursor is taken as the position it names, in
// the owner's own list.
const invalidCursor = "is not a cursor this server handed out"

// storeError maps a store error to the client's answer.
func storeError(err error, doing string) error {
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return httperr.NotFound("conversation not found")
	case errors.Is(err, persistence.ErrInvalidCursor):
		return httperr.InvalidField("cursor", invalidCursor)
	default:
		return fmt.Errorf("%s: %w", doing, err)
	}
}
