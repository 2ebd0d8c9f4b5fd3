package sqlite

import (
	"context"
	"fmt"
	"math"
	"time"

	"chatd/persistence"
)

// qStreamingBefore finds the streaming messages through the partial index
// messages_streaming, each with its updated_at as a read sees it (its last
// chunk's At, see liveCol): ?1 before, ?2 and ?3 the (updated_at, id)
// after which the page starts, ?4 the limit.
var qStreamingBefore = readQ(`SELECT id, conversation_id, owner_id, at FROM (
	SELECT id, conversation_id, owner_id, ` + chunkAt("messages.rowid", "messages.updated_at") + ` AS at
	FROM messages WHERE status = 'streaming')
	WHERE at < ?1 AND (at, id) > (?2, ?3) ORDER BY at, id LIMIT ?4`)

// StreamingBefore returns a page of the messages still streaming last
// updated before before, oldest first (see persistence.Messages). A single
// process never needs it (it ends them all at start, InterruptStreaming);
// it is here for the contract.
func (s *Store) StreamingBefore(ctx context.Context, before time.Time, after persistence.StreamingMessage, limit int) ([]persistence.StreamingMessage, error) {
	afterAt := int64(math.MinInt64)
	if after.ID != "" {
		if !persistence.ValidID(after.ID) {
			// No page's last (as on MongoDB, whose ids are ObjectIDs): a
			// string compared with the ids would start a page anywhere.
			return nil, fmt.Errorf("sqlite: streaming messages after %q: %w", after.ID, persistence.ErrNotFound)
		}
		afterAt = toNanos(after.UpdatedAt)
	}
	rows, err := s.query(ctx, qStreamingBefore, toNanos(before), afterAt, after.ID, persistence.ClampPageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: streaming messages before %s: %w", before.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []persistence.StreamingMessage
	for rows.Next() {
		var m persistence.StreamingMessage
		var at int64
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.OwnerID, &at); err != nil {
			return nil, fmt.Errorf("sqlite: streaming messages before %s: %w", before.Format(time.RFC3339), err)
		}
		m.UpdatedAt = fromNanos(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: streaming messages before %s: %w", before.Format(time.RFC3339), err)
	}
	return out, nil
}
