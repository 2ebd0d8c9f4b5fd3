package hub

import (
	"context"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
)

// TestResumeFromStoredCheckpoint: a tab that read the answer's stored text
// mid-answer (REST, which shows the last checkpoint) and resumes from its
// length is taken, although part of that text is still held back by the
// coalescer (written to the store at once, sent in a delta later): the
// held text goes out to every tab at once, so the resumed tab continues
// exactly where it is, as the others do. Before, the resume was refused
// with bad_seq (the cursor was past what had been sent), as a client
// reloading after that refusal would be again while the model kept the
// coalescer busy; a mirror of the answer on another instance took it.
func TestResumeFromStoredCheckpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		reasoning bool
	}{{"text", false}, {"reasoning", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pieces, handled := make(chan string), make(chan struct{})
			script := func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
				emit := onDelta
				if tc.reasoning {
					emit = req.OnReasoning
				}
				for {
					select {
					case p, ok := <-pieces:
						if !ok {
							return llm.Result{FinishReason: "stop"}, nil
						}
						emit(p)
						handled <- struct{}{}
					case <-ctx.Done():
						return llm.Result{}, context.Cause(ctx)
					}
				}
			}
			// An hour's interval: the first piece goes out at once, the
			// next is held for the rest of the test unless something sends it.
			e := newEnv(t, Options{CoalesceInterval: time.Hour}, script)
			first := newSub("u")
			res := e.send(t, first, "hi")
			for _, p := range []string{"héllo ", "wörld"} {
				pieces <- p
				<-handled
			}
			stored := e.stored(t, res.MessageID)
			cursor := int64(len(stored.Content))
			req := SubscribeRequest{ConversationID: res.ConversationID, MessageID: res.MessageID, LastSeq: &cursor}
			if tc.reasoning {
				cursor = int64(len(stored.Reasoning))
				zero := int64(0)
				req.LastSeq, req.LastReasoningSeq = &zero, &cursor
			}
			if cursor != int64(len("héllo wörld")) {
				t.Fatalf("stored %q / %q, want every piece checkpointed", stored.Content, stored.Reasoning)
			}
			late := newSub("u")
			if err := e.h.Subscribe(context.Background(), late, "u", req); err != nil {
				t.Fatalf("resume from the stored text's length: %v", err)
			}
			late.expect(t, protocol.TypeAck)
			pieces <- "!"
			<-handled
			close(pieces)
			kind := protocol.TypeDelta
			if tc.reasoning {
				kind = protocol.TypeReasoning
			}
			// Every tab gets the held text once, then the rest: the
			// resumed one only what follows its cursor.
			for _, tab := range []struct {
				sub  *fakeSub
				want string
			}{{first, "héllo wörld!"}, {late, "!"}} {
				got := ""
				for f := tab.sub.next(t); !f.IsDone(res.MessageID); f = tab.sub.next(t) {
					if f.Type == kind {
						got += decode(t, f).Text
					}
				}
				if got != tab.want {
					t.Fatalf("a tab got %q, want %q", got, tab.want)
				}
			}
		})
	}
}
