package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
)

type deleteRequest struct {
	Password string `json:"password"`
}

// deleteAccount removes the signed-in user's account and everything it
// owns, once the password is given again. The password check counts as a
// login attempt (the same limits, per account and per address). Then
// every token of the account is revoked, within the request's bound
// (RequestTimeout: past it, 503 and nothing else done). The rest runs on
// its own, bounded by DeleteTimeout rather than by the request, so that a
// slow store never leaves it cut in the middle by the request's bound:
// OnDeleting ends the user's connections and running answers (on every
// instance), and the store removes the user, the conversations and the
// messages. The store's first write marks the user as being deleted (no
// sign-in, no token, the email still taken): a removal cut off after it
// (DeleteTimeout, the process's end) is finished by the store on its own
// (persistence.DeletionFinisher), never left as a live account with part
// of its data. The request waits for it until its own bound: 204 when it
// is done; 202 {"status":"deleting"} when it is still running, or failed
// after the mark (persistence.ErrDeleting: the store finishes it; the
// outcome is logged), also when the mark's own write landed but its reply
// was lost (markLanded); its error when it failed before. A failure before
// the mark (OnDeleting's, or the mark's) leaves the account signed out
// everywhere but in place: signing in and deleting again finishes it.
// Once the server shuts down (Wait), a deletion is refused before its
// tokens are revoked: 503 unavailable, the account untouched.
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
	if !a.deleting.Enter() {
		httperr.AbortError(c, httperr.Unavailable(deletionsClosed, nil))
		return
	}
	ctx := c.Request.Context()
	_, err = a.store.BumpTokenVersion(ctx, u.ID)
	if err != nil {
		a.deleting.Leave()
	}
	switch {
	case errors.Is(err, persistence.ErrNotFound): // a concurrent deletion removed it meanwhile
		c.Status(http.StatusNoContent)
		return
	case err != nil:
		httperr.AbortError(c, fmt.Errorf("revoke tokens of %s: %w", u.ID, err))
		return
	}
	select {
	case err := <-a.removeDetached(u.ID):
		switch {
		case errors.Is(err, persistence.ErrDeleting): // the store finishes it
			c.JSON(http.StatusAccepted, gin.H{"status": "deleting"})
		case err != nil:
			httperr.AbortError(c, err)
		default:
			c.Status(http.StatusNoContent)
		}
	case <-ctx.Done():
		c.JSON(http.StatusAccepted, gin.H{"status": "deleting"})
	}
}

// removeDetached ends the live work of a user whose tokens were revoked
// and deletes their data, on a goroutine of its own bounded by
// DeleteTimeout, whose outcome it logs and sends on the channel it
// returns. The caller began the deletion (deleting.Enter): it ends as
// the goroutine returns, which Wait waits for.
func (a *Accounts) removeDetached(userID string) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer a.deleting.Leave()
		ctx, cancel := context.WithTimeout(context.Background(), a.opts.DeleteTimeout)
		defer cancel()
		err := a.removeAccount(ctx, userID)
		if errors.Is(err, persistence.ErrDeleting) {
			a.opts.Logger.Warn("account deletion cut off; the store finishes it", slog.String("user_id", userID), slog.Any("err", err))
		} else if err != nil {
			a.opts.Logger.Error("delete account", slog.String("user_id", userID), slog.Any("err", err))
		} else {
			a.opts.Logger.Info("account deleted", slog.String("user_id", userID))
		}
		done <- err
	}()
	return done
}

// removeAccount ends the live work of a user whose tokens were revoked and
// deletes their data. An account that a concurrent deletion removed
// meanwhile (not found) counts as deleted.
func (a *Accounts) removeAccount(ctx context.Context, userID string) error {
	if a.opts.OnDeleting != nil {
		if err := a.opts.OnDeleting(ctx, userID); err != nil {
			return fmt.Errorf("end the live work of %s: %w", userID, err)
		}
	}
	err := a.store.DeleteUser(ctx, userID)
	switch {
	case err == nil || errors.Is(err, persistence.ErrNotFound):
		return nil
	case !errors.Is(err, persistence.ErrDeleting) && a.markLanded(ctx, userID):
		return fmt.Errorf("delete account %s: %w (the mark landed: %w)", userID, err, persistence.ErrDeleting)
	}
	return fmt.Errorf("delete account %s: %w", userID, err)
}

// markLanded tells whether the mark of a DeleteUser that failed without
// persistence.ErrDeleting landed all the same (its write done, its reply
// lost: a timeout, a dropped connection): the user then reads as not
// found, and the store finishes the deletion. It re-reads within
// RequestTimeout of its own, since ctx may be what ended; a failed
// re-read counts as not landed.
func (a *Accounts) markLanded(ctx context.Context, userID string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.RequestTimeout)
	defer cancel()
	_, err := a.store.UserByID(ctx, userID)
	return errors.Is(err, persistence.ErrNotFound)
}

// Wait waits until the account deletions under way are done, or ctx ends.
// From its call on, a deletion that would start is refused (503
// unavailable, the account untouched), so that none runs on once Wait
// returned. The server calls it as it shuts down, before it closes the
// store.
func (a *Accounts) Wait(ctx context.Context) error {
	a.deleting.Close()
	if err := a.deleting.Wait(ctx); err != nil {
		return fmt.Errorf("account deletions under way: %w", err)
	}
	return nil
}

// deletionsClosed is the message of a deletion refused as the server
// shuts down (deletions closed).
const deletionsClosed = "the server is shutting down; the account was not deleted: retry in a moment"
