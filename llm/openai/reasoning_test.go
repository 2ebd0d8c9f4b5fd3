package openai_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestReasoningStreams: reasoning arrives apart from the answer, byte for
// byte, whichever field spelling the upstream uses, and before the answer;
// also from Mistral's reasoning models, whose content is a list of parts
// (thinking parts, then text parts), where the answer failed as malformed.
func TestReasoningStreams(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"reasoning_content", "reasoning", "mixed", "both", "parts"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
			c := newClient(srv.URL, nil)
			var reasoning, text strings.Builder
			var order []string
			req := request("[[fake tokens=6 reasoning=9 reasoning_key=" + key + "]] why?")
			req.OnReasoning = func(s string) { reasoning.WriteString(s); order = append(order, "r") }
			res, err := c.Stream(testCtx(t), req, func(s string) { text.WriteString(s); order = append(order, "t") })
			if err != nil {
				t.Fatal(err)
			}
			cfg := fakeai.Config{Tokens: 6, Reasoning: 9}
			if reasoning.String() != fakeai.ExpectedReasoning(cfg) || text.String() != fakeai.ExpectedText(cfg) {
				t.Fatalf("reasoning %q text %q, want %q and %q", reasoning.String(), text.String(),
					fakeai.ExpectedReasoning(cfg), fakeai.ExpectedText(cfg))
			}
			if got := strings.Join(order, ""); got != strings.Repeat("r", 9)+strings.Repeat("t", 6) {
				t.Fatalf("callback order %s", got)
			}
			if res.FinishReason != "stop" {
				t.Fatalf("finish %q", res.FinishReason)
			}
		})
	}
}

// TestReasoningDroppedWithoutCallback: with no OnReasoning the answer is
// unchanged and no reasoning leaks into it.
func TestReasoningDroppedWithoutCallback(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake tokens=4 reasoning=5 reasoning_key=mixed]] hi", 0)
	if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 4}) {
		t.Fatalf("text %q err %v", r.text(), r.err)
	}
}

// TestSurrogatePairsJoined (issue 10 item 21): an emoji sent as a UTF-16
// surrogate pair cut across two chunks arrives whole, not as two U+FFFD.
func TestSurrogatePairsJoined(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake tokens=16 surrogates=true]] hi", 0)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 16})
	if !strings.Contains(want, "🙂") || r.text() != want {
		t.Fatalf("text %q, want %q", r.text(), want)
	}
	checkDeltas(t, r.deltas)
}

// TestSamplingParamsSent: temperature (0 included), top_p, stop and
// max_tokens reach the upstream's request body.
func TestSamplingParamsSent(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	c := newClient(srv.URL, nil)
	for _, temp := range []float64{0, 1.5} {
		req := request("[[fake tokens=3]] hi")
		topP := 0.25
		req.Temperature, req.TopP, req.Stop, req.MaxTokens = &temp, &topP, []string{"END", "\n\n"}, 77
		if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
			t.Fatal(err)
		}
		rec, _ := srv.LastRequest()
		if rec.Temperature == nil || math.Abs(*rec.Temperature-temp) > 1e-6 || rec.TopP == nil || *rec.TopP != 0.25 ||
			!reflect.DeepEqual(rec.Stop, []string{"END", "\n\n"}) || rec.MaxTokens != 77 {
			t.Fatalf("upstream saw temperature %v top_p %v stop %q max %d in %s", rec.Temperature, rec.TopP, rec.Stop, rec.MaxTokens, rec.Body)
		}
	}
	if _, err := c.Stream(testCtx(t), request("[[fake tokens=2]] hi"), func(string) {}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := srv.LastRequest(); rec.Temperature != nil || rec.TopP != nil || rec.Stop != nil {
		t.Fatalf("unset parameters were sent: %s", rec.Body)
	}
}

// TestContextLengthError: a prompt the upstream refuses as too long is a
// KindContextLength error, not retried.
func TestContextLengthError(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey})
	r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake context=3]] one two three four five", 0)
	var e *llm.Error
	if !errors.As(r.err, &e) || e.Kind != llm.KindContextLength || !strings.Contains(e.Message, "context window") {
		t.Fatalf("error %v", r.err)
	}
	if srv.Requests() != 1 {
		t.Fatalf("%d requests: a context-length refusal was retried", srv.Requests())
	}
}

// TestModelContextWindow: a context_length in the model list becomes ContextTokens.
func TestModelContextWindow(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{APIKey: testKey, Models: []string{"m1"}, ContextLength: 8192})
	got, err := newClient(srv.URL, nil).Models(testCtx(t))
	if err != nil || len(got) != 1 || got[0].ContextTokens != 8192 {
		t.Fatalf("models %+v err %v", got, err)
	}
}
