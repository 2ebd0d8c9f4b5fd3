package mongo

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
)

// pageCursor is the position after the last conversation of a page: pages
// are sorted by (updated_at, _id) descending, so the next page holds what
// sorts strictly after it.
type pageCursor struct {
	updatedAt time.Time
	id        bson.ObjectID
}

// cursorLen is 8 bytes of milliseconds since the epoch and a 12-byte ObjectID.
const cursorLen = 8 + 12

// encode returns the opaque form: URL-safe base64 without padding.
func (c pageCursor) encode() string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.updatedAt.UnixMilli()))
	copy(b[8:], c.id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor parses what encode produced; anything else is
// ErrInvalidCursor (strict: the same bytes written with a trailing padding
// bit set are refused, as the SQLite store refuses them). A well-formed
// cursor it did not hand out is taken as the position it names: the
// query stays the owner's.
func decodeCursor(s string) (pageCursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return pageCursor{}, fmt.Errorf("cursor %q: %w", s, persistence.ErrInvalidCursor)
	}
	var c pageCursor
	c.updatedAt = time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	copy(c.id[:], b[8:])
	return c, nil
}

// after is the filter for what sorts after c in (updated_at, _id) descending order.
func (c pageCursor) after() bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: c.updatedAt}}}},
		bson.D{
			{Key: "updated_at", Value: c.updatedAt},
			{Key: "_id", Value: bson.D{{Key: "$lt", Value: c.id}}},
		},
	}}}
}
