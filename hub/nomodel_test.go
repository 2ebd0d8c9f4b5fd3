package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
)

// downModel is fakeModel until down is set; then its every upstream is
// unreachable and lists nothing, as the Router says then.
type downModel struct {
	*fakeModel
	down  atomic.Bool
	empty atomic.Bool // the upstreams answer, listing no model
}

func (m *downModel) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	switch {
	case m.empty.Load():
		return nil, fmt.Errorf("list models: %w", &llm.Error{Kind: llm.KindUnknownModel, Message: "No model is available."})
	case m.down.Load():
		return nil, fmt.Errorf("list models: %w", &llm.Error{Kind: llm.KindConnection, Message: "Could not reach the model provider."})
	}
	return m.fakeModel.Models(ctx)
}

// TestSendWithNoModelReachable: a send or regenerate while no upstream
// can list a model is refused as unavailable, saying why, and stores
// nothing, because it was an internal error (a server failure logged as
// such, "the server could not handle this frame" for the user).
func TestSendWithNoModelReachable(t *testing.T) {
	t.Parallel()
	model := &downModel{fakeModel: &fakeModel{script: say("hi")}}
	e := &env{store: newMemStore(), model: model.fakeModel}
	e.writer = &memWriter{store: e.store}
	e.h = New(Options{Store: e.store, Writer: e.writer, Model: model})
	runHub(t, e.h, nil)
	sub := newSub("u")
	res := e.send(t, sub, "first")
	sub.textUntilDone(t, res.MessageID, 0)
	model.down.Store(true)
	tests := []struct {
		name string
		do   func() error
	}{
		{"send creating a conversation", func() error {
			_, err := e.h.Send(context.Background(), nil, "u", SendRequest{Content: "hello"})
			return err
		}},
		{"send into a conversation", func() error {
			_, err := e.h.Send(context.Background(), nil, "u", SendRequest{ConversationID: res.ConversationID, Content: "hello", Model: "fake"})
			return err
		}},
		{"regenerate", func() error {
			_, err := e.h.Regenerate(context.Background(), nil, "u", RegenerateRequest{ConversationID: res.ConversationID})
			return err
		}},
	}
	for _, tc := range tests {
		err := tc.do()
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable || !strings.Contains(pe.Message, "Could not reach the model provider") {
			t.Fatalf("%s: err %v, want %s saying why", tc.name, err, protocol.CodeUnavailable)
		}
	}
	model.empty.Store(true)
	_, err := e.h.Send(context.Background(), nil, "u", SendRequest{Content: "hello"})
	if pe := (*protocol.Error)(nil); !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownModel {
		t.Fatalf("send with no model listed: err %v, want %s", err, protocol.CodeUnknownModel)
	}
	if ids := e.store.conversationIDs(); len(ids) != 1 {
		t.Fatalf("conversations %v, want only the first", ids)
	}
	if msgs, _ := e.store.Messages(context.Background(), "u", res.ConversationID); len(msgs) != 2 {
		t.Fatalf("%d messages, want the first exchange only", len(msgs))
	}
}
