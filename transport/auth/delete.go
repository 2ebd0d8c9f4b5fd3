package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
)

// deleteTimeout bounds the work of an account deletion once its password
// was checked: ending the user's connections and answers, then removing
// the data. It runs to the end even when the client goes away meanwhile.
const deleteTimeout = time.Minute

type deleteRequest struct {
	Password string `json:"password"`
}

// deleteAccount removes the signed-in user's account and everything it
// owns, once the password is given again. The password check counts as a
// login attempt (the same limits, per account and per address). Then, in
// this order: every token of the account is revoked, OnDeleting ends the
// user's connections and running answers (on every instance), and the
// store removes the user, the conversations and the messages. A failure
// after the revocation leaves the account signed out everywhere but in
// place: signing in and deleting again finishes it.
func (a *Accounts) deleteAccount(c *gin.Context) {
	var req deleteRequest
	if err := httperr.DecodeJSON(c.Request, &req); err != nil {
		httperr.AbortError(c, err)
		return
	}
	u, err := a.confirm(c, "password", req.Password)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), deleteTimeout)
	defer cancel()
	if err := a.removeAccount(ctx, u.ID); err != nil {
		httperr.AbortError(c, err)
		return
	}
	a.opts.Logger.Info("account deleted", slog.String("user_id", u.ID))
	c.Status(http.StatusNoContent)
}

// removeAccount revokes the user's tokens, ends their live work and
// deletes their data. An account that a concurrent deletion removed
// meanwhile (not found) counts as deleted.
func (a *Accounts) removeAccount(ctx context.Context, userID string) error {
	_, err := a.store.BumpTokenVersion(ctx, userID)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke tokens of %s: %w", userID, err)
	}
	if a.opts.OnDeleting != nil {
		if err := a.opts.OnDeleting(ctx, userID); err != nil {
			return fmt.Errorf("end the live work of %s: %w", userID, err)
		}
	}
	if err := a.store.DeleteUser(ctx, userID); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return fmt.Errorf("delete account %s: %w", userID, err)
	}
	return nil
}
