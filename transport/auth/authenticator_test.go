package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

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
			st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close(context.Background()) })
			store := &rowsLoaded{Store: st}
			authn, err := NewAuthenticator(tc.wrap(store), Options{Secret: []byte("0123456789abcdef0123456789abcdef-test")})
			if err != nil {
				t.Fatal(err)
			}
			u := persistence.User{Email: "tv@example.test", Name: "T", PasswordHash: "x"}
			if err := st.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			token, _, err := authn.Issue(u)
			if err != nil {
				t.Fatal(err)
			}
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
