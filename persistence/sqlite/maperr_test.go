package sqlite

import (
	"context"
	"errors"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"chatd/persistence"
)

// TestMappedErrorsKeepTheCause: an error the store maps to a sentinel
// (ErrDuplicate here) still holds the driver's error, whose code says
// which constraint failed. Before, mapErr formatted the cause with %v:
// only its text was left.
func TestMappedErrorsKeepTheCause(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := context.Background()
	for range 2 {
		u := persistence.User{Email: "twice@example.com", Name: "N", PasswordHash: "x"}
		err := s.CreateUser(ctx, &u)
		if err == nil {
			continue
		}
		var se *sqlite.Error
		if !errors.Is(err, persistence.ErrDuplicate) || !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
			t.Fatalf("second user with the email: %v (driver error %v), want ErrDuplicate holding a unique-constraint error", err, se)
		}
		return
	}
	t.Fatal("a second user with the same email was stored")
}
