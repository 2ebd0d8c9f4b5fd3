package auth

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"chatd/persistence"
)

// Token defaults.
const (
	// MinSecretBytes is the shortest HMAC secret accepted (256 bits, the
	// size of the HS256 digest).
	MinSecretBytes = 32
	// DefaultTTL is how long a token lives: 7 days. There is no refresh
	// token; a session ends when the token expires or the user logs out
	// (which revokes every token of that user at once).
	DefaultTTL = 7 * 24 * time.Hour
	// DefaultIssuer and DefaultAudience fill the iss and aud claims.
	DefaultIssuer   = "chatd"
	DefaultAudience = "chatd"
	// DefaultLeeway tolerates clock skew between servers on exp.
	DefaultLeeway = 30 * time.Second
	// maxTokenBytes refuses absurd tokens before any parsing.
	maxTokenBytes = 4096
)

// Options configure an Authenticator.
type Options struct {
	// Secret signs and verifies tokens (HS256); at least MinSecretBytes. Required.
	Secret []byte
	// Accepted are more secrets whose tokens are verified and accepted;
	// they never sign. Rotating the secret without signing anyone out
	// (docs/deploy.md) first makes the new secret accepted everywhere,
	// then the signing one with the old secret accepted. Each is at least
	// MinSecretBytes and differs from Secret.
	Accepted [][]byte
	// TTL is a token's lifetime; it defaults to DefaultTTL.
	TTL time.Duration
	// Issuer is the iss claim; it defaults to DefaultIssuer.
	Issuer string
	// Audience is the aud claim; it defaults to DefaultAudience.
	Audience string
	// Leeway is the clock skew tolerated on a token's expiry; it defaults
	// to DefaultLeeway. Its issue time is not compared with the clock.
	Leeway time.Duration
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// CheckTimeout bounds the store read of Middleware's token check,
	// counted from the request's start: the route behind it shares that
	// deadline when its own bound is as long (CHATD_REQUEST_TIMEOUT sets
	// both). It defaults to DefaultCheckTimeout. A store that does not
	// answer in time makes the request fail with 503 unavailable
	// (Retry-After).
	CheckTimeout time.Duration
}

// DefaultCheckTimeout is the default Options.CheckTimeout.
const DefaultCheckTimeout = 30 * time.Second

func (o *Options) setDefaults() error {
	if len(o.Secret) < MinSecretBytes {
		return fmt.Errorf("auth: the JWT secret must be at least %d bytes, got %d", MinSecretBytes, len(o.Secret))
	}
	for i, s := range o.Accepted {
		switch {
		case len(s) < MinSecretBytes:
			return fmt.Errorf("auth: accepted JWT secret %d must be at least %d bytes, got %d", i+1, MinSecretBytes, len(s))
		case bytes.Equal(s, o.Secret):
			return fmt.Errorf("auth: accepted JWT secret %d is the signing secret", i+1)
		}
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.Leeway <= 0 {
		o.Leeway = DefaultLeeway
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	return nil
}

// claims is the whole token payload: who (sub), which token generation
// (tv), and the registered time/issuer/audience claims. Nothing personal.
type claims struct {
	jwt.RegisteredClaims
	TokenVersion *int64 `json:"tv"`
}

// Validate checks what the jwt validator does not: a well-formed subject,
// a token version and an issue time must all be present. The issue time
// is not compared with this host's clock (newTokens): nothing here reads
// it (a session is revoked by its token version, not by when it was
// issued), and a token issued by another instance whose clock is ahead
// of this one's would be refused, its tabs signed out.
func (c claims) Validate() error {
	switch {
	case !persistence.ValidID(c.Subject):
		return fmt.Errorf("%w: sub", jwt.ErrTokenRequiredClaimMissing)
	case c.TokenVersion == nil:
		return fmt.Errorf("%w: tv", jwt.ErrTokenRequiredClaimMissing)
	case c.IssuedAt == nil:
		return fmt.Errorf("%w: iat", jwt.ErrTokenRequiredClaimMissing)
	}
	return nil
}

// tokens signs and parses the server's JWTs.
type tokens struct {
	opts   Options
	parser *jwt.Parser
	// key is what verifies a token's signature: the secret, or with
	// accepted secrets a set of them tried in turn, the secret first.
	key any
}

func newTokens(opts Options) (*tokens, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	opts.Secret = append([]byte(nil), opts.Secret...)
	var key any = opts.Secret
	if len(opts.Accepted) > 0 {
		set := jwt.VerificationKeySet{Keys: []jwt.VerificationKey{opts.Secret}}
		for _, s := range opts.Accepted {
			set.Keys = append(set.Keys, append([]byte(nil), s...))
		}
		key = set
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		// Not jwt.WithIssuedAt: an iat ahead of this host's clock is
		// accepted (Validate requires one), so the instances' clocks need
		// not agree for a token one issued to pass every other.
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(),
	)
	return &tokens{opts: opts, parser: p, key: key}, nil
}

// issue returns a signed token for the user at token version tv.
func (t *tokens) issue(userID string, tv int64) (string, time.Time, error) {
	now := t.opts.Now().Truncate(time.Second)
	exp := now.Add(t.opts.TTL)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			Issuer:    t.opts.Issuer,
			Audience:  jwt.ClaimStrings{t.opts.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		TokenVersion: &tv,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.opts.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// expired reports whether a token expiring at exp is no longer accepted,
// with the leeway parse allows.
func (t *tokens) expired(exp time.Time) bool {
	return t.acceptedFor(exp) <= 0
}

// acceptedFor is how long a token expiring at exp is still accepted, on
// the tokens' clock: until exp plus the leeway parse allows. expired, and
// the close timers of the live connections (Identity.AcceptedUntil), both
// read it, so that a connection is not closed for a token that a request
// would still accept.
func (t *tokens) acceptedFor(exp time.Time) time.Duration {
	return exp.Add(t.opts.Leeway).Sub(t.opts.Now())
}

// parse verifies a token's signature and claims.
func (t *tokens) parse(token string) (claims, error) {
	var c claims
	if len(token) > maxTokenBytes {
		return c, errors.New("token too long")
	}
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		return t.key, nil
	})
	return c, err
}
