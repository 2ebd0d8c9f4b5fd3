package hub

import (
	"context"
	"errors"
	"strings"
	"testing"

	"chatd/hub/protocol"
)

// TestUnknownModelNameCut: the unknown_model refusal of a send or
// regenerate naming a model far past protocol.MaxModelChars (a caller not
// checking frames with protocol.Validate) names it cut at that limit, not
// whole.
func TestUnknownModelNameCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("ok"))
	long := strings.Repeat("m", 100_000)
	res := e.send(t, nil, "hello")
	e.h.work.Wait()
	tests := []struct {
		name string
		do   func() error
	}{
		{"send", func() error {
			_, err := e.h.Send(context.Background(), nil, "u", SendRequest{Content: "hello", Model: long})
			return err
		}},
		{"regenerate", func() error {
			_, err := e.h.Regenerate(context.Background(), nil, "u", RegenerateRequest{ConversationID: res.ConversationID, Model: long})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownModel {
				t.Fatalf("err %.200v, want %s", err, protocol.CodeUnknownModel)
			}
			want := `model "` + long[:protocol.MaxModelChars] + `…" is not available`
			if pe.Message != want {
				t.Fatalf("message of %d bytes %.300q, want %q", len(pe.Message), pe.Message, want)
			}
		})
	}
}
