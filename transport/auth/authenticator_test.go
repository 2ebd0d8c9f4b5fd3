package auth

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// rowsLoaded is the SQLite store counting the user rows it loads.
type rowsLoaded struct {
	*sqlite.Store
	rows atomic.Int64
}

func (s *rowsLoaded) UserByID(ctx context.Context, id string) (persistence.User, error) {
	s.rows.Add(1)
	return s.Store.UserByID(ctx, id)
}

// sessionStore opens a SQLite store in a temporary directory (closed when
// tb ends), an Authenticator over wrap(store), and a user with a token.
func sessionStore(tb testing.TB, wrap func(*sqlite.Store) UserFinder) (*sqlite.Store, *Authenticator, persistence.User, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(tb.TempDir(), "chatd.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	authn, err := NewAuthenticator(wrap(st), Options{Secret: []byte("0123456789abcdef0123456789abcdef-test")})
	if err != nil {
		tb.Fatal(err)
	}
	u := persistence.User{Email: "session@example.test", Name: "S", PasswordHash: "x"}
	if err := st.CreateUser(ctx, &u); err != nil {
		tb.Fatal(err)
	}
	token, _, err := authn.Issue(u)
	if err != nil {
		tb.Fatal(err)
	}
	return st, authn, u, token
}

// userByIDOnly hides the store's TokenVersion, as a store without it.
type userByIDOnly struct{ persistence.UserFinder }

// TestAuthenticateReadsTokenVersion: Authenticate (which a WebSocket runs
// before every send) reads the token version alone from a store that can
// (persistence.TokenVersionReader: no user row is loaded) and the user row
// from one that cannot; either way a token of a signed-out session, or of
// a user who is gone, is refused.
func TestAuthenticateReadsTokenVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wrap func(*rowsLoaded) UserFinder
		rows int64 // user rows loaded by the three checks
	}{
		{"token version alone", func(s *rowsLoaded) UserFinder { return s }, 0},
		{"a store without it", func(s *rowsLoaded) UserFinder { return userByIDOnly{s} }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var store *rowsLoaded
			st, authn, u, token := sessionStore(t, func(st *sqlite.Store) UserFinder {
				store = &rowsLoaded{Store: st}
				return tc.wrap(store)
			})
			id, err := authn.Authenticate(ctx, token)
			if err != nil || id.UserID != u.ID || id.TokenVersion != 0 {
				t.Fatalf("Authenticate = %+v, %v; want user %s at version 0", id, err, u.ID)
			}
			if _, err := st.BumpTokenVersion(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := authn.Authenticate(ctx, token); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Authenticate after sign-out = %v, want ErrUnauthorized", err)
			}
			gone, _, err := authn.Issue(persistence.User{ID: persistence.NewID()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := authn.Authenticate(ctx, gone); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Authenticate of an unknown user = %v, want ErrUnauthorized", err)
			}
			if n := store.rows.Load(); n != tc.rows {
				t.Fatalf("%d user rows loaded, want %d", n, tc.rows)
			}
		})
	}
}

// usersFunc is a UserFinder answering from a function.
type usersFunc func(ctx context.Context, id string) (persistence.User, error)

func (f usersFunc) UserByID(ctx context.Context, id string) (persistence.User, error) {
	return f(ctx, id)
}

// TestRecheck: Recheck, which a WebSocket runs before every send instead
// of Authenticate, accepts the identity Authenticate returned while its
// session holds, and refuses it as Authenticate refuses its token once the
// token expired (past the leeway), the user signed out or changed the
// password (a new token version), or the account is gone; a store that
// cannot be read is a server failure, not a refusal.
func TestRecheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	storeDown := errors.New("store down")
	users := usersFunc(func(_ context.Context, id string) (persistence.User, error) {
		switch id {
		case "alice":
			return persistence.User{ID: id, TokenVersion: 2}, nil
		case "broken":
			return persistence.User{}, storeDown
		}
		return persistence.User{}, persistence.ErrNotFound
	})
	for _, tc := range []struct {
		name      string
		id        Identity
		now       time.Time
		wantErr   error // nil: accepted
		isRefusal bool
	}{
		{"valid", Identity{UserID: "alice", TokenVersion: 2, ExpiresAt: exp}, exp.Add(-time.Minute), nil, false},
		{"expired, within the leeway", Identity{UserID: "alice", TokenVersion: 2, ExpiresAt: exp}, exp.Add(DefaultLeeway - time.Second), nil, false},
		{"expired", Identity{UserID: "alice", TokenVersion: 2, ExpiresAt: exp}, exp.Add(DefaultLeeway), ErrUnauthorized, true},
		{"signed out since", Identity{UserID: "alice", TokenVersion: 1, ExpiresAt: exp}, exp.Add(-time.Minute), ErrUnauthorized, true},
		{"account gone", Identity{UserID: "bob", TokenVersion: 0, ExpiresAt: exp}, exp.Add(-time.Minute), ErrUnauthorized, true},
		{"store down", Identity{UserID: "broken", TokenVersion: 0, ExpiresAt: exp}, exp.Add(-time.Minute), storeDown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			authn, err := NewAuthenticator(users, Options{Secret: []byte("0123456789abcdef0123456789abcdef-test"),
				Now: func() time.Time { return tc.now }})
			if err != nil {
				t.Fatal(err)
			}
			err = authn.Recheck(ctx, tc.id)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Recheck = %v, want %v", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrUnauthorized); got != tc.isRefusal {
				t.Fatalf("Recheck = %v: a refusal %v, want %v", err, got, tc.isRefusal)
			}
		})
	}
}

// TestRecheckAgreesWithAuthenticate: the identity a real token
// authenticates to is rechecked the same way the token is authenticated,
// before and after the user signs out.
func TestRecheckAgreesWithAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, authn, u, token := sessionStore(t, func(st *sqlite.Store) UserFinder { return st })
	id, err := authn.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if err := authn.Recheck(ctx, id); err != nil {
		t.Fatalf("Recheck of a fresh session = %v", err)
	}
	if _, err := st.BumpTokenVersion(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, aerr := authn.Authenticate(ctx, token)
	rerr := authn.Recheck(ctx, id)
	if !errors.Is(aerr, ErrUnauthorized) || !errors.Is(rerr, ErrUnauthorized) {
		t.Fatalf("after sign-out: Authenticate = %v, Recheck = %v; want both ErrUnauthorized", aerr, rerr)
	}
	if err := st.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := authn.Recheck(ctx, Identity{UserID: u.ID, TokenVersion: 1, ExpiresAt: id.ExpiresAt}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Recheck of a deleted account = %v, want ErrUnauthorized", err)
	}
}

// TestAcceptedUntil: the identity a token authenticates to is accepted
// until the token's expiry plus the leeway, read on the Authenticator's
// clock and given on the host's: the WebSocket and the event stream are
// closed then, so a token past its expiry but within the leeway, which
// every request accepts, does not open a connection closed at once.
func TestAcceptedUntil(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := usersFunc(func(_ context.Context, id string) (persistence.User, error) {
		return persistence.User{ID: id, TokenVersion: 1}, nil
	})
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Duration // after the issue, on the token clock
		left time.Duration // how long it is still accepted then
	}{
		{"fresh", 0, time.Hour + DefaultLeeway},
		{"before its expiry", time.Hour - time.Second, time.Second + DefaultLeeway},
		{"past its expiry, within the leeway", time.Hour + 10*time.Second, DefaultLeeway - 10*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var now atomic.Pointer[time.Time]
			now.Store(&issued)
			authn, err := NewAuthenticator(users, Options{Secret: []byte("0123456789abcdef0123456789abcdef-test"),
				TTL: time.Hour, Now: func() time.Time { return *now.Load() }})
			if err != nil {
				t.Fatal(err)
			}
			token, _, err := authn.Issue(persistence.User{ID: "0123456789abcdef01234567", TokenVersion: 1})
			if err != nil {
				t.Fatal(err)
			}
			at := issued.Add(tc.at)
			now.Store(&at)
			before := time.Now()
			id, err := authn.Authenticate(ctx, token)
			after := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			if id.AcceptedUntil.Before(before.Add(tc.left)) || id.AcceptedUntil.After(after.Add(tc.left)) {
				t.Fatalf("accepted until %s after the authentication, want %s",
					id.AcceptedUntil.Sub(before).Round(time.Second), tc.left)
			}
			if !id.ExpiresAt.Equal(issued.Add(time.Hour)) {
				t.Fatalf("ExpiresAt %s, want the token's exp %s", id.ExpiresAt, issued.Add(time.Hour))
			}
		})
	}
}
