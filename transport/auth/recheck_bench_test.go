package auth

import (
	"context"
	"testing"

	"chatd/persistence/sqlite"
)

// BenchmarkSessionCheck is a WebSocket's check of its session before a
// send, on the SQLite store: the token authenticated again (parsed,
// its signature verified, then the token version read), as before, against
// the identity it authenticated to at the upgrade rechecked (its expiry
// compared, the token version read).
func BenchmarkSessionCheck(b *testing.B) {
	ctx := context.Background()
	_, authn, _, token := sessionStore(b, func(st *sqlite.Store) UserFinder { return st })
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
