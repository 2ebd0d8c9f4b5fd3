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

// TestSamplingSentToModelsGoOpenAIKnows: a temperature and top_p reach
// the upstream for every model, those go-openai refuses them to by name
// (its ReasoningValidator: any model whose id starts with o1, o3, o4 or
// gpt-5, before any request) included: gpt-5-chat-latest takes them, and
// dropping them there silently lost a conversation's settings. Only the
// upstream's own refusal (OpenAI's 400 "Unsupported value: 'temperature'"
// from a reasoning model) drops one, on the request sent again.
func TestSamplingSentToModelsGoOpenAIKnows(t *testing.T) {
	t.Parallel()
	temp, topP := 0.2, 0.9
	tests := []struct {
		model, marker string
		requests      int64
		temperature   bool // sent in the last request
	}{
		{"gpt-5-chat-latest", "", 1, true},
		{"gpt-5", "", 1, true},
		{"o3-mini", "[[fake refuse=temperature]]", 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			req := request(tc.marker + "hi")
			req.Model, req.Temperature, req.TopP, req.Stop = tc.model, &temp, &topP, []string{"END"}
			var b strings.Builder
			if _, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(s string) { b.WriteString(s) }); err != nil {
				t.Fatalf("err %v (kind %s)", err, llm.KindOf(err))
			}
			if b.String() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
				t.Fatalf("text %q", b.String())
			}
			recs := srv.Recorded()
			if int64(len(recs)) != tc.requests {
				t.Fatalf("%d requests, want %d", len(recs), tc.requests)
			}
			if first := recs[0]; first.Temperature == nil || float32(*first.Temperature) != float32(temp) {
				t.Fatalf("first request: temperature %v, want %v", deref(first.Temperature), temp)
			}
			last := recs[len(recs)-1]
			if (last.Temperature != nil) != tc.temperature || last.TopP == nil || float32(*last.TopP) != float32(topP) || last.Stop == nil {
				t.Fatalf("last request: temperature %v, top_p %v, stop %v; want temperature sent %v, top_p %v, stop",
					deref(last.Temperature), deref(last.TopP), last.Stop, tc.temperature, topP)
			}
		})
	}
}

// TestSamplingRefusalRemembered: a sampling field a model's upstream
// refused is left out of the model's later requests on the same client,
// so that only its first answer pays the refusal's round trip (OpenAI's
// reasoning models refuse temperature and top_p at every request: every
// answer took 2 or 3 requests); another model on the client is still
// sent it.
func TestSamplingRefusalRemembered(t *testing.T) {
	t.Parallel()
	temp, topP := 0.2, 0.9
	tests := []struct {
		refuse      string
		first       int // requests of the first answer
		temperature bool
		topP        bool // sent in the second answer's request
	}{
		{"temperature", 2, false, true},
		{"top_p", 2, true, false},
		{"temperature,top_p", 3, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.refuse, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			c := newClient(srv.URL, nil)
			answer := func(model, prompt string) {
				t.Helper()
				req := request(prompt)
				req.Model, req.Temperature, req.TopP = model, &temp, &topP
				if _, err := c.Stream(testCtx(t), req, func(string) {}); err != nil {
					t.Fatalf("%s: err %v (kind %s)", model, err, llm.KindOf(err))
				}
			}
			answer("o3-mini", "[[fake refuse="+tc.refuse+"]]hi")
			if n := len(srv.Recorded()); n != tc.first {
				t.Fatalf("first answer: %d requests, want %d", n, tc.first)
			}
			answer("o3-mini", "[[fake refuse="+tc.refuse+"]]again")
			recs := srv.Recorded()
			if n := len(recs); n != tc.first+1 {
				t.Fatalf("second answer: %d requests in all, want %d (%d + 1)", n, tc.first+1, tc.first)
			}
			if last := recs[len(recs)-1]; (last.Temperature != nil) != tc.temperature || (last.TopP != nil) != tc.topP {
				t.Fatalf("second answer: temperature %v, top_p %v; want sent %v, %v",
					deref(last.Temperature), deref(last.TopP), tc.temperature, tc.topP)
			}
			answer("gpt-5-chat-latest", "hi")
			recs = srv.Recorded()
			if last := recs[len(recs)-1]; len(recs) != tc.first+2 || last.Temperature == nil || last.TopP == nil {
				t.Fatalf("another model: %d requests, temperature %v, top_p %v; want 1 more, both sent",
					len(recs), deref(last.Temperature), deref(last.TopP))
			}
		})
	}
}

// TestZeroTemperatureSentAsZero: a temperature of 0 reaches the upstream
// as 0, not as go-openai's stand-in (about 1.4e-45), which a server that
// divides the logits by the temperature (llama.cpp) takes for a positive
// one; a top_p of 0 keeps the stand-in (vLLM refuses 0); other values go
// as they are, also in a request asked again without a refused field. A
// value too small for a float32 (1e-50) is sent as 0 is: it was dropped
// (0 once converted, left out by go-openai's omitempty), so the upstream's
// default (often 1) applied.
func TestZeroTemperatureSentAsZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		marker      string
		temp, topP  float64
		wantTemp    func(float64) bool
		wantTopP    func(float64) bool
		wantReqs    int64
		description string
	}{
		{"temperature 0", "", 0, 0.9, func(v float64) bool { return v == 0 }, func(v float64) bool { return float32(v) == 0.9 }, 1, "0, and top_p 0.9"},
		{"top_p 0", "", 0.7, 0, func(v float64) bool { return float32(v) == 0.7 }, func(v float64) bool { return v > 0 && v < 1e-30 }, 1, "0.7, and a tiny positive top_p"},
		{"both 0", "", 0, 0, func(v float64) bool { return v == 0 }, func(v float64) bool { return v > 0 && v < 1e-30 }, 1, "0, and a tiny positive top_p"},
		// Below float32's least positive value: 0 once converted, sent as 0 is.
		{"temperature 1e-50", "", 1e-50, 0.9, func(v float64) bool { return v == 0 }, func(v float64) bool { return float32(v) == 0.9 }, 1, "0, and top_p 0.9"},
		// Below 1e-30 (a subnormal float32 or not): an upstream dividing the
		// logits by it overflows; sent as 0 too.
		{"temperature 1e-40", "", 1e-40, 0.9, func(v float64) bool { return v == 0 }, func(v float64) bool { return float32(v) == 0.9 }, 1, "0, and top_p 0.9"},
		{"temperature 2e-38 (a normal float32, still overflowing a division)", "", 2e-38, 0.9, func(v float64) bool { return v == 0 }, func(v float64) bool { return float32(v) == 0.9 }, 1, "0, and top_p 0.9"},
		{"temperature 1e-38", "", 1e-38, 0.9, func(v float64) bool { return v == 0 }, func(v float64) bool { return float32(v) == 0.9 }, 1, "0, and top_p 0.9"},
		{"top_p 1e-50", "", 0.7, 1e-50, func(v float64) bool { return float32(v) == 0.7 }, func(v float64) bool { return v > 0 && v < 1e-30 }, 1, "0.7, and a tiny positive top_p"},
		{"asked again", "[[fake refuse=top_p]]", 0, 0.9, func(v float64) bool { return v == 0 }, nil, 2, "0 in the second request, top_p left out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			req := request(tc.marker + "hello")
			req.Temperature, req.TopP = &tc.temp, &tc.topP
			if _, err := newClient(srv.URL, nil).Stream(testCtx(t), req, func(string) {}); err != nil {
				t.Fatalf("err %v (kind %s)", err, llm.KindOf(err))
			}
			if n := srv.Requests(); n != tc.wantReqs {
				t.Fatalf("%d requests, want %d", n, tc.wantReqs)
			}
			rec, _ := srv.LastRequest()
			okTemp := rec.Temperature != nil && tc.wantTemp(*rec.Temperature)
			okTopP := (tc.wantTopP == nil && rec.TopP == nil) || (tc.wantTopP != nil && rec.TopP != nil && tc.wantTopP(*rec.TopP))
			if !okTemp || !okTopP {
				t.Fatalf("sent temperature %v, top_p %v; want %s", deref(rec.Temperature), deref(rec.TopP), tc.description)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
