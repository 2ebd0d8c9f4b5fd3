// Package auth holds accounts and sessions: password hashing, login rate
// limiting, HS256 JWTs revocable through a per-user token version, the gin
// middleware that authenticates API requests, and the /api/auth routes.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
	"chatd/transport/internal/reqtimeout"
)

// ErrUnauthorized is wrapped by every Authenticate error that means "this
// token does not let anyone in" (missing, malformed, badly signed, expired,
// revoked, or its user is gone). Other errors are store failures.
var ErrUnauthorized = errors.New("unauthorized")

// ErrNoToken is Authenticate's error for a request without a token; it
// wraps ErrUnauthorized.
var ErrNoToken = fmt.Errorf("%w: no token", ErrUnauthorized)

// Identity is who a verified token speaks for.
type Identity struct {
	UserID       string
	TokenVersion int64
	// ExpiresAt is the token's exp claim; Recheck judges it with the
	// leeway, as Authenticate did.
	ExpiresAt time.Time
	// AcceptedUntil is when the token stops being accepted, on this
	// host's clock (time.Now): ExpiresAt plus the leeway, as Authenticate
	// found it. A WebSocket or event stream opened with the token is
	// closed then (4401 token expired), not at ExpiresAt, which a token
	// still accepted by every request may already have passed.
	AcceptedUntil time.Time
}

// UserFinder is what the Authenticator needs from the store. A store that
// also implements persistence.TokenVersionReader is asked for the token
// version alone.
type UserFinder = persistence.UserFinder

// Authenticator issues and verifies tokens.
type Authenticator struct {
	users  UserFinder
	tokens *tokens
}

// NewAuthenticator returns an Authenticator checking tokens against users;
// it fails when opts.Secret is too short.
func NewAuthenticator(users UserFinder, opts Options) (*Authenticator, error) {
	t, err := newTokens(opts)
	if err != nil {
		return nil, err
	}
	return &Authenticator{users: users, tokens: t}, nil
}

// Issue returns a signed token for u at its current token version, and when
// it expires.
func (a *Authenticator) Issue(u persistence.User) (string, time.Time, error) {
	return a.tokens.issue(u.ID, u.TokenVersion)
}

// Authenticate verifies token (signature, algorithm, iss, aud, exp, sub,
// tv; an iat present, whatever this host's clock says of it) and checks that its token version is still the user's current
// one. Errors wrapping ErrUnauthorized mean the token is no good; any other
// error is a store failure.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrNoToken
	}
	c, err := a.tokens.parse(token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	exp := c.ExpiresAt.Time
	id := Identity{UserID: c.Subject, TokenVersion: *c.TokenVersion, ExpiresAt: exp,
		AcceptedUntil: time.Now().Add(a.tokens.acceptedFor(exp))}
	if err := a.checkVersion(ctx, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Recheck tells whether the session of id, which Authenticate returned
// earlier, is still valid: its token has not expired, its user still
// exists, and its token version is still the user's (no logout, password
// change or account deletion since). A WebSocket rechecks its session this
// way before every send: the token it was opened with was verified then,
// and what verified it (the secrets, the issuer, the audience) cannot
// change while the process runs, so only the expiry and the store are
// looked at again. Errors are Authenticate's.
func (a *Authenticator) Recheck(ctx context.Context, id Identity) error {
	if a.tokens.expired(id.ExpiresAt) {
		return fmt.Errorf("%w: token expired", ErrUnauthorized)
	}
	return a.checkVersion(ctx, id)
}

// checkVersion checks that id's token version is its user's current one,
// reading only the version where the store can.
func (a *Authenticator) checkVersion(ctx context.Context, id Identity) error {
	tv, err := persistence.UserTokenVersion(ctx, a.users, id.UserID)
	if errors.Is(err, persistence.ErrNotFound) {
		return fmt.Errorf("%w: user %s no longer exists", ErrUnauthorized, id.UserID)
	}
	if err != nil {
		return fmt.Errorf("load user %s: %w", id.UserID, err)
	}
	if tv != id.TokenVersion {
		return fmt.Errorf("%w: token revoked", ErrUnauthorized)
	}
	return nil
}

// Middleware authenticates the request's Authorization: Bearer token and
// stores the Identity for IdentityFrom. It answers 400 bad_request
// (invalid_request) for more than one Authorization header
// (httperr.RepeatedAuthorization), 401 unauthorized for a
// missing or bad token and 503 unavailable when the store cannot be read
// within Options.CheckTimeout of the request's start (reqtimeout.Bound):
// the route's own bound counts from that start too, so the check and the
// route share one deadline rather than each waiting the whole of it. The
// check's bound does not reach the handler: an event stream behind it
// runs on.
func (a *Authenticator) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if e := httperr.RepeatedAuthorization(c.Request.Header); e != nil {
			httperr.AbortError(c, e)
			return
		}
		ctx, cancel := reqtimeout.Bound(c.Request.Context(), a.tokens.opts.CheckTimeout)
		id, err := a.Authenticate(ctx, BearerToken(c.Request.Header))
		cancel()
		if err != nil {
			AbortAuthError(c, err)
			return
		}
		SetIdentity(c, id)
		c.Next()
	}
}

// AbortAuthError answers an Authenticate error: 401 when it wraps
// ErrUnauthorized (its WWW-Authenticate challenge says invalid_token but
// for ErrNoToken), else 503.
func AbortAuthError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, ErrNoToken):
		httperr.AbortError(c, httperr.Unauthorized("missing token: send Authorization: Bearer <token>"))
		return
	case errors.Is(err, ErrUnauthorized):
		httperr.AbortError(c, httperr.InvalidToken("invalid, expired or revoked token"))
		return
	}
	httperr.AbortError(c, httperr.Unavailable("cannot check the token now; retry", err))
}

const identityKey = "chatd.auth.identity"

// SetIdentity stores id in c (the request logger reads it too). Middleware
// calls it; a handler that authenticates by other means (a WebSocket
// subprotocol) may too.
func SetIdentity(c *gin.Context, id Identity) { c.Set(identityKey, id) }

// IdentityFrom returns the Identity Middleware (or SetIdentity) stored in c.
func IdentityFrom(c *gin.Context) (Identity, bool) {
	v, ok := c.Get(identityKey)
	if !ok {
		return Identity{}, false
	}
	id, ok := v.(Identity)
	return id, ok
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive), or "" when there is none.
func BearerToken(h http.Header) string {
	v := strings.TrimSpace(h.Get("Authorization"))
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
