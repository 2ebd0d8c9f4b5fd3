package openai_test

import (
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestSamplingFieldRefused: a model that refuses a sampling parameter as
// unsupported (OpenAI's reasoning models refuse temperature, top_p and
// stop) is asked again at once without it, so that a conversation tuned
// for another model still gets answers; the others are still sent.
func TestSamplingFieldRefused(t *testing.T) {
	t.Parallel()
	temp, topP := 0.7, 0.9
	tests := []struct{ refuse string }{{"temperature"}, {"top_p"}, {"stop"}}
	for _, tc := range tests {
		t.Run(tc.refuse, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			req := request("[[fake refuse=" + tc.refuse + "]]")
			req.Temperature, req.TopP, req.Stop = &temp, &topP, []string{"END"}
			var b strings.Builder
			if _, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(s string) { b.WriteString(s) }); err != nil {
				t.Fatalf("err %v (kind %s)", err, llm.KindOf(err))
			}
			if b.String() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
				t.Fatalf("text %q", b.String())
			}
			if n := srv.Requests(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
			rec, _ := srv.LastRequest()
			kept := map[string]bool{"temperature": rec.Temperature != nil, "top_p": rec.TopP != nil, "stop": rec.Stop != nil}
			for field, sent := range kept {
				if sent != (field != tc.refuse) {
					t.Errorf("second request: %s sent %v", field, sent)
				}
			}
		})
	}
}

// TestSamplingDroppedForKnownReasoningModels: go-openai itself refuses to
// send a temperature or top_p other than 1 to the reasoning models it
// knows by name (o1, o3, o4, gpt-5), before any request: such a request
// is asked again without them, as when the upstream refuses them, instead
// of every answer of a conversation tuned for another model failing.
func TestSamplingDroppedForKnownReasoningModels(t *testing.T) {
	t.Parallel()
	temp, topP := 0.7, 0.9
	for _, model := range []string{"o3-mini", "gpt-5"} {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			req := request("hi")
			req.Model, req.Temperature, req.TopP, req.Stop = model, &temp, &topP, []string{"END"}
			var b strings.Builder
			if _, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(s string) { b.WriteString(s) }); err != nil {
				t.Fatalf("err %v (kind %s)", err, llm.KindOf(err))
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("%d requests, want 1 (the refused ones never leave)", n)
			}
			rec, _ := srv.LastRequest()
			if rec.Temperature != nil || rec.TopP != nil || rec.Stop == nil {
				t.Errorf("sent temperature %v, top_p %v, stop %v; want only stop", rec.Temperature, rec.TopP, rec.Stop)
			}
		})
	}
}
