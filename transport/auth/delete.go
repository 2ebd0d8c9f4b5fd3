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

type deleteRequest struct {
	Password string `json:"password"`
}

// deleteAccount removes the signed-in user's account and everything it
// owns, once the password is given again. The password check counts as a
// login attempt (the same limits, per account and per address). Then
// every token of the account is revoked, within the request's bound
// (RequestTimeout: past it, 503 and nothing else done); an account a
// concurrent deletion marked since the password check is not found
// there, and this deletion goes on to an outcome of its own, never a
// 204 over an account that deletion may still take back. The rest runs on
// its own, bounded by DeleteTimeout rather than by the request, so that a
// slow store never leaves it cut in the middle by the request's bound:
// the store marks the user as being deleted (MarkUserDeleting: no
// sign-in on any instance, as for an unknown account, no token, the email
// still taken), OnDeleting ends the user's connections and running
// answers (on every instance), and the store removes the user, the
// conversations and the messages (DeleteUser, whose own first write
// marks the user for good). A removal cut off after DeleteUser's mark
// (DeleteTimeout, the process's end) is finished by the store on its own
// (persistence.DeletionFinisher), never left as a live account with part
// of its data; so is one whose first mark stays (the process ended, or
// taking it back failed), once it is persistence.DeletionGrace old. The
// request waits for it until its own bound: 204 when it is done; 202
// {"status":"deleting"} when it is still running, or failed with the
// user marked (persistence.ErrDeleting: the store finishes it; the
// outcome is logged), also when DeleteUser's mark landed but its reply
// was lost; its error when it failed before. A failure before
// DeleteUser's mark (the first mark's, OnDeleting's, or DeleteUser's own
// write not landing) takes the first mark back (takeBack), leaving the
// account signed out everywhere but in place: signing in and deleting
// again finishes it; one past takeBackWithin from the mark leaves the
// mark to the store (202). Once the server shuts down (Wait), a deletion is
// refused before its tokens are revoked: 503 unavailable, the account
// untouched.
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
	// Not found: a concurrent deletion marked the account (or removed it)
	// since the password check. This one goes on all the same, to an
	// outcome of its own: that deletion may still fail and take its mark
	// back, so a 204 now could answer an account that stays.
	if _, err := a.store.BumpTokenVersion(ctx, u.ID); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		a.deleting.Leave()
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
// deletes their data. First the store marks the user
// (MarkUserDeleting): from then on no instance signs them in or finds
// them, so no session starts that OnDeleting's snapshot of their live
// work would miss. Then OnDeleting ends that work, and DeleteUser removes
// the data. A failure before DeleteUser's own mark takes the first mark
// back (takeBack): the account whole, in place, signed out. An account
// that a concurrent deletion marked or removed meanwhile is deleted all
// the same (not found counts as deleted).
func (a *Accounts) removeAccount(ctx context.Context, userID string) error {
	markedAt := a.opts.Now()
	marked, err := a.mark(ctx, userID, markedAt)
	if err != nil {
		return err
	}
	if a.opts.OnDeleting != nil {
		if err := a.opts.OnDeleting(ctx, userID); err != nil {
			return a.takeBack(ctx, userID, marked, markedAt, fmt.Errorf("end the live work of %s: %w", userID, err))
		}
	}
	err = a.store.DeleteUser(ctx, userID)
	switch {
	case err == nil || errors.Is(err, persistence.ErrNotFound):
		return nil
	case errors.Is(err, persistence.ErrDeleting):
		return fmt.Errorf("delete account %s: %w", userID, err)
	}
	return a.takeBack(ctx, userID, marked, markedAt, fmt.Errorf("delete account %s: %w", userID, err))
}

// markState is what a deletion knows of its own first mark.
type markState int

const (
	markNone   markState = iota // none of its own: a concurrent deletion's, or none
	markUnsure                  // its write failed: landed with its reply lost, or not
	markStood                   // it landed
)

// mark marks userID as being deleted (MarkUserDeleting) and says whether
// this deletion's mark stands (markStood) or it has none of its own
// (markNone). Not found is a user a concurrent deletion marked or
// removed: the deletion goes on without a mark of its own, and
// DeleteUser tells which. A failed mark, which may have landed, is taken
// back (takeBack): its error when the account is in place or cannot be
// read; one that stands all the same (its reply lost, its taking back
// failed, as a re-read tells) is gone on with. markedAt is when the
// mark was asked for.
func (a *Accounts) mark(ctx context.Context, userID string, markedAt time.Time) (markState, error) {
	err := a.store.MarkUserDeleting(ctx, userID)
	switch {
	case err == nil:
		return markStood, nil
	case errors.Is(err, persistence.ErrNotFound):
		return markNone, nil
	}
	err = a.takeBack(ctx, userID, markUnsure, markedAt, fmt.Errorf("mark %s as being deleted: %w", userID, err))
	if errors.Is(err, persistence.ErrDeleting) {
		return markStood, nil
	}
	return markNone, err
}

// takeBack ends a deletion of userID that failed with cause before
// DeleteUser's mark landed, as far as the deletion knows. It takes back
// the deletion's own mark, if it may have one (mark:
// UnmarkUserDeleting, which never takes back DeleteUser's), then reads
// the user: found, the account is in place (signed out) and cause is
// returned; not found, it stays marked
// (DeleteUser's mark landed with its reply lost, the taking back failed,
// or a concurrent deletion), the store finishes the deletion
// (persistence.DeletionFinisher) and the error holds
// persistence.ErrDeleting. A failed read counts as marked only when this
// deletion's mark stood (markStood), else as in place: a mark whose own
// write failed and that no read shows (the database unreachable) is not
// said to stand, and cause is returned (500, or 503). The read works
// within RequestTimeout of its own, since ctx (or the taking back's
// bound) may be what ended; the taking back is bounded by what is left
// of the grace (unmark).
func (a *Accounts) takeBack(ctx context.Context, userID string, mark markState, markedAt time.Time, cause error) error {
	if mark != markNone {
		err := a.unmark(ctx, userID, markedAt)
		if err == nil {
			return cause
		}
		switch {
		case errors.Is(err, errGraceSpent):
			// By design: past takeBackWithin the mark is the store's sweep's to finish.
			a.opts.Logger.Info("an account's deletion mark left to the store's sweep (too late to take back)", slog.String("user_id", userID))
		case !errors.Is(err, persistence.ErrNotFound):
			a.opts.Logger.Warn("taking back an account's deletion mark failed", slog.String("user_id", userID), slog.Any("err", err))
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.RequestTimeout)
	defer cancel()
	_, err := a.store.UserByID(ctx, userID)
	if err == nil || mark != markStood && !errors.Is(err, persistence.ErrNotFound) {
		return cause
	}
	return fmt.Errorf("%w (the account stays marked: %w)", cause, persistence.ErrDeleting)
}

// unmark takes back the first mark of userID, asked for at markedAt
// (UnmarkUserDeleting), within RequestTimeout and never past
// takeBackWithin from markedAt: after that the store may be finishing the
// deletion (persistence.DeletionGrace), and the mark is left to it
// (errGraceSpent).
func (a *Accounts) unmark(ctx context.Context, userID string, markedAt time.Time) error {
	left := takeBackWithin - a.opts.Now().Sub(markedAt)
	if left <= 0 {
		return errGraceSpent
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(a.opts.RequestTimeout, left))
	defer cancel()
	return a.store.UnmarkUserDeleting(ctx, userID)
}

// takeBackWithin bounds, from the mark, when a deletion takes its first
// mark back: persistence.DeletionGrace, less a minute for the clocks of
// the instances sharing the database (docs/deploy.md asks them to be
// within a minute of each other), after which a store's sweep may finish
// the mark. A removal may end after DeleteTimeout, and its taking back
// last RequestTimeout more (CHATD_REQUEST_TIMEOUT, up to 10 minutes):
// past this bound the mark stays, and the store finishes the deletion.
const takeBackWithin = persistence.DeletionGrace - time.Minute

// errGraceSpent is unmark's error past takeBackWithin.
var errGraceSpent = errors.New("the deletion's grace is spent: the store finishes it")

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
