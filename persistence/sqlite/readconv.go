package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"chatd/persistence"
)

var _ persistence.ConversationReader = (*Store)(nil)

// ConversationWithMessages returns the owner's conversation and every
// message of it, oldest first, in one read transaction on one pooled
// connection (persistence.ConversationReader): one wait for a read
// connection where Conversation then Messages take two, or three for a
// conversation without messages (Messages then checks that it exists;
// here the conversation's row, read in the same snapshot, says so).
func (s *Store) ConversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	c, ms, err := s.conversationWithMessages(ctx, ownerID, id)
	if err != nil {
		return persistence.Conversation{}, nil, fmt.Errorf("sqlite: conversation %s with its messages: %w", id, s.readErr(err))
	}
	return c, ms, nil
}

func (s *Store) conversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	convQ, err := s.rStmts.get(qConvByID)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	msgsQ, err := s.rStmts.get(qMsgsConv)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	// ctx bounds the wait for a connection; the statements, which read a
	// local file in microseconds, ignore its cancellation as the writer's
	// do (internal.go): a cancellable ctx would cost the driver a watcher
	// goroutine per statement.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to keep or lose
	run := context.WithoutCancel(ctx)
	c, err := scanConv(tx.StmtContext(run, convQ).QueryRowContext(run, id, ownerID))
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	rows, err := tx.StmtContext(run, msgsQ).QueryContext(run, id, ownerID)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	ms, err := collectMsgs(rows)
	if err != nil {
		return persistence.Conversation{}, nil, err
	}
	return c, ms, nil
}
