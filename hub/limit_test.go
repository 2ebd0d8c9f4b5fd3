package hub

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
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

// TestCapAfterAnotherEnd: a piece the model client had read before a Stop
// or the duration limit ended the answer may still arrive and reach
// MaxAnswerBytes; the answer is labelled by what ended it (cancelled, or
// the timeout error), not complete with finish reason length.
func TestCapAfterAnotherEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       Options
		stop       bool // the user presses Stop; else the duration limit ends it
		reasoning  bool // the late piece is reasoning
		wantStatus string
		wantCode   string
	}{
		{"stopped, then text past the cap", Options{MaxAnswerBytes: 100}, true, false, "cancelled", ""},
		{"timed out, then reasoning past the cap", Options{MaxAnswerBytes: 100, MaxDuration: 50 * time.Millisecond}, false, true, "error", string(llm.KindTimeout)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started := make(chan struct{})
			e := newEnv(t, tc.opts, func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
				onDelta("hello ")
				close(started)
				<-ctx.Done()
				late := string(make([]byte, 200)) // read before the end, handed over after it
				if tc.reasoning {
					req.OnReasoning(late)
				} else {
					onDelta(late)
				}
				return llm.Result{}, context.Cause(ctx)
			})
			sub := newSub("u")
			res := e.send(t, sub, "q")
			<-started
			if tc.stop {
				if err := e.h.Cancel(context.Background(), "u", res.ConversationID); err != nil {
					t.Fatal(err)
				}
			}
			var done frame
			for done.Type == "" {
				if f := sub.next(t); f.IsDone(res.MessageID) {
					done = decode(t, f)
				}
			}
			code := ""
			if done.Error != nil {
				code = done.Error.Code
			}
			if done.Status != tc.wantStatus || done.FinishReason == "length" || code != tc.wantCode {
				t.Fatalf("done %s/%q (error code %q), want %s (code %q)", done.Status, done.FinishReason, code, tc.wantStatus, tc.wantCode)
			}
			if m := e.stored(t, res.MessageID); string(m.Status) != tc.wantStatus || m.FinishReason == "length" {
				t.Fatalf("stored %s/%q, want %s", m.Status, m.FinishReason, tc.wantStatus)
			}
		})
	}
}
