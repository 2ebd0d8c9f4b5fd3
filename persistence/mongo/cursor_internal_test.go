package mongo

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
)

// TestDecodeCursorStrict: a cursor decodes only from what encode makes.
// The same 20 bytes written with a trailing padding bit set (base64's
// last character of 27 carries 2 bits no byte holds) are refused, as the
// SQLite store's strict decoding refuses them; before, they were taken as
// the cursor they differ from.
func TestDecodeCursorStrict(t *testing.T) {
	t.Parallel()
	want := pageCursor{updatedAt: time.UnixMilli(1_765_000_000_123).UTC(), id: bson.NewObjectID()}
	good := want.encode()
	got, err := decodeCursor(good)
	if err != nil || !got.updatedAt.Equal(want.updatedAt) || got.id != want.id {
		t.Fatalf("decodeCursor(%q) = %v, %v; want %v", good, got, err, want)
	}
	last := strings.IndexByte(base64URLAlphabet, good[len(good)-1]) // the 6 bits it stands for
	for _, tc := range []struct{ name, cursor string }{
		{"padding bit set", good[:len(good)-1] + string(base64URLAlphabet[last|1])},
		{"padding bits set", good[:len(good)-1] + string(base64URLAlphabet[last|3])},
		{"padded", good + "="},
		{"a byte short", base64.RawURLEncoding.EncodeToString(make([]byte, cursorLen-1))},
		{"a byte over", base64.RawURLEncoding.EncodeToString(make([]byte, cursorLen+1))},
		{"not base64", "!!!"},
	} {
		if _, err := decodeCursor(tc.cursor); !errors.Is(err, persistence.ErrInvalidCursor) {
			t.Errorf("%s: decodeCursor(%q): %v, want ErrInvalidCursor", tc.name, tc.cursor, err)
		}
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
