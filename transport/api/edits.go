package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport/httperr"
	"chatd/transport/limits"
)

// BudgetEdits names the budget of changes and deletions of conversations
// in ConversationOptions.SharedEdits.
const BudgetEdits = "edits"

// DefaultEditsPerMinute is the default ConversationOptions.EditsPerMinute:
// far more renames, model picks and deletions than a person makes, so
// that only a script looping over PATCH or DELETE meets it.
const DefaultEditsPerMinute = 60

// spendEdit spends one of user's changes or deletions of a conversation,
// of this process and of the cluster (SharedEdits), once the request was
// checked (a 400 spends none) and before any store write, or answers 429
// with Retry-After and returns false. One the cluster refuses gives this
// process's back.
func (h *Conversations) spendEdit(c *gin.Context, user string) bool {
	if h.edits == nil {
		return true
	}
	wait, ok := h.edits.take(user, time.Now())
	if ok {
		if wait, ok = limits.TakeBudget(h.sharedEd, limits.DefaultSharedTimeout, h.sharedLog, BudgetEdits, user, h.editsMin); !ok {
			h.edits.give(user, time.Now())
		}
	}
	if !ok {
		httperr.AbortError(c, httperr.RateLimited("too many changes to conversations; try again in a moment", wait))
	}
	return ok
}

// badRequest reports whether err refuses a request for what it holds
// (400): such a request spends no edit.
func badRequest(err error) bool {
	var he *httperr.Error
	return errors.As(err, &he) && he.Status == http.StatusBadRequest
}
