package mongo

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"chatd/persistence"
)

// TestMapErrUnavailable: mapErr wraps persistence.ErrUnavailable around
// the driver's network errors (the database cannot be reached now),
// keeping them in the chain, so the
// API answers 503 unavailable with Retry-After; other errors keep their
// mapping or are left as they are. Before, the unreachable ones were
// plain driver errors, answered 500 internal.
func TestMapErrUnavailable(t *testing.T) {
	t.Parallel()
	network := mongo.CommandError{Code: 6, Message: "connection reset", Labels: []string{"NetworkError"}}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
		is          error // also in the mapped error's chain, when not nil
	}{
		{"a network error", fmt.Errorf("insert: %w", network), true, nil},
		{"a command the server refused", mongo.CommandError{Code: 2, Message: "bad value"}, false, nil},
		{"no document", mongo.ErrNoDocuments, false, persistence.ErrNotFound},
		{"a duplicate key", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}, false, persistence.ErrDuplicate},
		{"another error", errors.New("other"), false, nil},
	} {
		got := mapErr(tc.err)
		if errors.Is(got, persistence.ErrUnavailable) != tc.unavailable {
			t.Errorf("%s: mapErr = %v; want persistence.ErrUnavailable: %v", tc.name, got, tc.unavailable)
		}
		if tc.is != nil && !errors.Is(got, tc.is) {
			t.Errorf("%s: mapErr = %v; want %v in its chain", tc.name, got, tc.is)
		}
		var ce mongo.CommandError
		if tc.unavailable && (!errors.As(got, &ce) || !ce.HasErrorLabel("NetworkError")) {
			t.Errorf("%s: mapErr = %v; want the driver's error kept in its chain", tc.name, got)
		}
	}
}
