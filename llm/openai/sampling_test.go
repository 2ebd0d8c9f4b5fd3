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
