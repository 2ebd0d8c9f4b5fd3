package hub

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/llm"
)

// TestReasoningSizeCap: a model that only thinks is bounded like one that
// only talks: its reasoning stops at MaxAnswerBytes (on a character
// boundary), the stream is cancelled, and the answer is stored complete
// with finish reason length and the reasoning that was delivered.
func TestReasoningSizeCap(t *testing.T) {
	t.Parallel()
	streamErr := make(chan error, 1)
	e := newEnv(t, Options{MaxAnswerBytes: 100}, func(ctx context.Context, req llm.Request, _ func(string)) (llm.Result, error) {
		for range 1000 {
			if ctx.Err() != nil {
				streamErr <- context.Cause(ctx)
				return llm.Result{}, context.Cause(ctx)
			}
			req.OnReasoning("ab中") // 5 bytes: 100 is not a multiple of the piece
		}
		streamErr <- nil
		return llm.Result{FinishReason: "stop"}, nil
	})
	sub := newSub("u")
	res := e.send(t, sub, "think forever")
	reasoning := ""
	var done frame
	for done.Type == "" {
		f := sub.next(t)
		switch {
		case f.Type == protocol.TypeReasoning && f.MessageID == res.MessageID:
			var r struct {
				RSeq int64  `json:"rseq"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(f.Data, &r); err != nil {
				t.Fatal(err)
			}
			if r.RSeq != int64(len(reasoning)+len(r.Text)) {
				t.Fatalf("reasoning rseq %d after %d bytes of %d: not contiguous", r.RSeq, len(reasoning), len(r.Text))
			}
			reasoning += r.Text
		case f.Type == protocol.TypeDelta && f.MessageID == res.MessageID:
			t.Fatalf("a delta from a model that only thinks: %s", f.Data)
		case f.IsDone(res.MessageID):
			done = decode(t, f)
		}
	}
	if len(reasoning) > 100 || len(reasoning) < 96 || !utf8.ValidString(reasoning) {
		t.Fatalf("capped reasoning has %d bytes (valid UTF-8: %v)", len(reasoning), utf8.ValidString(reasoning))
	}
	if done.Status != "complete" || done.FinishReason != "length" {
		t.Fatalf("done %+v, want complete/length", done)
	}
	if m := e.stored(t, res.MessageID); m.Reasoning != reasoning || m.Content != "" || m.FinishReason != "length" {
		t.Fatalf("stored reasoning of %d bytes, content %q, finish %q", len(m.Reasoning), m.Content, m.FinishReason)
	}
	if err := <-streamErr; !errors.Is(err, errTooLong) {
		t.Fatalf("stream ended with %v, want it cancelled by the cap", err)
	}
}
