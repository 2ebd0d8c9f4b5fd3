package auth

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// BenchmarkSessionCheck is a WebSocket's check of its session before a
// send, on the SQLite store: the token authenticated again (parsed,
// its signature verified, then the token version read), as before, against
// the identity it authenticated to at the upgrade rechecked (its expiry
// compared, the token version read).
func BenchmarkSessionCheck(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(b.TempDir(), "chatd.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close(context.Background()) })
	authn, err := NewAuthenticator(st, Options{Secret: []byte("0123456789abcdef0123456789abcdef-bench")})
	if err != nil {
		b.Fatal(err)
	}
	u := persistence.User{Email: "bench@example.test", Name: "B", PasswordHash: "x"}
	if err := st.CreateUser(ctx, &u); err != nil {
		b.Fatal(err)
	}
	token, _, err := authn.Issue(u)
	if err != nil {
		b.Fatal(err)
	}
	id, err := authn.Authenticate(ctx, token)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Authenticate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := authn.Authenticate(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Recheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := authn.Recheck(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
