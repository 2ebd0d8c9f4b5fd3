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
	id, err := a.verify(token)
	if err != nil {
		return Identity{}, err
	}
	if err := a.checkVersion(ctx, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// verify is Authenticate without the store: the token's signature and
// claims.
func (a *Authenticator) verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrNoToken
	}
	c, err := a.tokens.parse(token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	exp := c.ExpiresAt.Time
	return Identity{UserID: c.Subject, TokenVersion: *c.TokenVersion, ExpiresAt: exp,
		AcceptedUntil: time.Now().Add(a.tokens.acceptedFor(exp))}, nil
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
func (a *Authenticator) Middleware() gin.HandlerFunc { return a.MiddlewareTurns(nil) }

// Turns bounds the requests of each user running at once
// (limits.Requests): Enter waits for a turn of user's, bounded by ctx
// (then an error wrapping ctx's), or fails at once with any other error
// when too many of the user's wait already.
type Turns interface {
	Enter(ctx context.Context, user string) (release func(), err error)
}

// MiddlewareTurns is Middleware, but the request takes a turn of turns
// (nil: none) for the token's user, held until the handler returns,
// before the store is read: a user's requests waiting for a turn hold no
// connection of the store, so a flood of them does not queue in front of
// other users' token checks. The user is the token's subject once its
// signature and claims are verified (a token of another user cannot be
// made), whether or not it was revoked since: a revoked token waits in
// its own user's turns and is then refused 401. A request whose token
// does not verify takes no turn (it is refused without the store). It
// answers 429 rate_limited (Retry-After) when too many of the user's
// requests wait already, and 503 unavailable when the wait for a turn
// outlasts Options.CheckTimeout from the request's start.
func (a *Authenticator) MiddlewareTurns(turns Turns) gin.HandlerFunc {
	return func(c *gin.Context) {
		if e := httperr.RepeatedAuthorization(c.Request.Header); e != nil {
			httperr.AbortError(c, e)
			return
		}
		ctx, cancel := reqtimeout.Bound(c.Request.Context(), a.tokens.opts.CheckTimeout)
		defer cancel()
		id, err := a.verify(BearerToken(c.Request.Header))
		if err == nil && turns != nil {
			release, terr := turns.Enter(ctx, id.UserID)
			if terr != nil {
				abortTurn(c, terr)
				return
			}
			defer release()
		}
		if err == nil {
			err = a.checkVersion(ctx, id)
		}
		cancel()
		if err != nil {
			AbortAuthError(c, err)
			return
		}
		SetIdentity(c, id)
		c.Next()
	}
}

// abortTurn answers a Turns.Enter error: 503 when the wait ran out of
// time (or the client left), else 429.
func abortTurn(c *gin.Context, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		httperr.AbortError(c, httperr.Unavailable("too many of your requests are running; retry", err))
		return
	}
	httperr.AbortError(c, httperr.RateLimited("too many of your requests at once; try again in a moment", time.Second))
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
