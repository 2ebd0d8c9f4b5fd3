package auth

import (
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
