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

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// errChangedMeanwhile refuses a password change that another change (or
// a sign-out everywhere) overtook between the check of the current
// password (or the check of the request's token) and the write: applying
// it too would revoke the session the other change just answered with, or
// answer a new one to a session the sign-out ended.
var errChangedMeanwhile = httperr.New(http.StatusConflict, httperr.CodeConflict,
	"the password or the sessions of this account changed meanwhile; sign in again")

// errChangeUnknown answers a password change whose write failed in a way
// that leaves open whether it landed (replyLost) and whose account could
// not be read again to tell: it is not "not changed" (a 503 the client
// words so) but may have been. The web client matches "may have been
// changed" (frontend/src/lib/account.ts).
var errChangeUnknown = httperr.New(http.StatusServiceUnavailable, httperr.CodeUnavailable,
	"the password may have been changed: the server could not tell whether it was saved; sign in with the new password, or try again")

// replyLost says whether err, from a write, leaves open whether the write
// landed: the database out of reach (a MongoDB failover cuts the
// connection after the server applied it), the request's time spent, the
// client gone (the write cut with its context).
func replyLost(err error) bool {
	return errors.Is(err, persistence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// changeLanded reads user u again after ChangePassword failed with cause
// (replyLost), within RequestTimeout of its own since ctx may be what
// ended. Landed (hash stored at the version one past from, what
// ChangePassword sets), it returns the user as stored and no error: the
// change is answered as changed. Not landed (the version still from, hash
// not stored), it returns cause. Anything else (the read failing, the
// hash stored but the version moved on since: a logout after it), it
// returns errChangeUnknown, cause kept for the log.
func (a *Accounts) changeLanded(ctx context.Context, u persistence.User, hash string, from int64, cause error) (persistence.User, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.RequestTimeout)
	defer cancel()
	now, err := a.store.UserByID(ctx, u.ID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return u, err
	case err != nil:
		a.opts.Logger.Warn("reading an account again after its password change failed", slog.String("user_id", u.ID), slog.Any("err", err))
	case now.PasswordHash == hash && now.TokenVersion == from+1:
		return now, nil
	case now.PasswordHash != hash && now.TokenVersion == from:
		return u, cause
	}
	return u, fmt.Errorf("%w: %w", errChangeUnknown, cause)
}

// changePassword sets a new password (hashed in NFC) for the signed-in
// user, once the current one is given again (counted as a login attempt). The store sets
// the new hash and revokes every token issued before in one write, only
// if the token version is still the one the request's token was checked
// at: no other change or revocation came since (else 409 conflict,
// nothing changed);
// OnPasswordChanged then closes the connections of those sessions, on
// every instance, and the answer is a new session (token and user) for
// the caller, whose own old token no longer works either.
func (a *Accounts) changePassword(c *gin.Context) {
	var req changePasswordRequest
	if err := httperr.DecodeJSON(c.Request, &req); err != nil {
		httperr.AbortError(c, err)
		return
	}
	newPassword := normalizePassword(req.NewPassword)
	if p := newPasswordProblem(newPassword); p != "" {
		httperr.AbortError(c, httperr.InvalidField("newPassword", p))
		return
	}
	u, err := a.confirm(c, "currentPassword", req.CurrentPassword)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	ctx := c.Request.Context()
	hash, err := a.passwords.hash(ctx, newPassword)
	if err != nil {
		httperr.AbortError(c, hashError(err))
		return
	}
	// The version the request's token was checked at, not the one just
	// read: a logout landing between the two must refuse the change.
	id, _ := IdentityFrom(c)
	u.TokenVersion, err = a.store.ChangePassword(ctx, u.ID, hash, id.TokenVersion)
	if replyLost(err) {
		u, err = a.changeLanded(ctx, u, hash, id.TokenVersion, err)
	}
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		httperr.AbortError(c, errAccountGone)
		return
	case errors.Is(err, persistence.ErrConflict):
		httperr.AbortError(c, errChangedMeanwhile)
		return
	}
	if err != nil {
		httperr.AbortError(c, fmt.Errorf("change the password of %s: %w", u.ID, err))
		return
	}
	if a.opts.OnPasswordChanged != nil {
		a.opts.OnPasswordChanged(u.ID, u.TokenVersion)
	}
	a.opts.Logger.Info("password changed", slog.String("user_id", u.ID))
	a.answerSession(c, http.StatusOK, u)
}
