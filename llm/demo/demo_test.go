package demo_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/llm"
	"chatd/llm/demo"
)

func request(prompt string) llm.Request {
	return llm.Request{Model: demo.ModelID, Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "sys"},
		{Role: llm.RoleUser, Content: prompt},
	}}
}

func TestStream(t *testing.T) {
	t.Parallel()
	m := demo.New(demo.Options{Delay: -1})
	tests := []struct {
		name, prompt string
		wantQuote    string
	}{
		{"plain", "How do I sort a slice in Go?", "> How do I sort a slice in Go?"},
		{"multi-line", "line one\nline two", "> line one\n> line two"},
		{"unicode", "héllo 中文 🙂", "> héllo 中文 🙂"},
		{"empty", "  ", "> *(an empty message)*"},
		{"long", strings.Repeat("word ", 200), " …\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var deltas []string
			res, err := m.Stream(context.Background(), request(tc.prompt), func(s string) { deltas = append(deltas, s) })
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(deltas, "")
			if text != demo.Answer(request(tc.prompt)) {
				t.Fatalf("streamed text differs from Answer")
			}
			for _, want := range []string{tc.wantQuote, "```python\n", "\n```\n", "\n1. ", "\n- ", "Demo mode"} {
				if !strings.Contains(text, want) {
					t.Errorf("answer lacks %q:\n%s", want, text)
				}
			}
			for _, d := range deltas {
				if d == "" || !utf8.ValidString(d) {
					t.Fatalf("bad delta %q", d)
				}
			}
			if len(deltas) < 50 {
				t.Errorf("only %d deltas: not streamed token by token", len(deltas))
			}
			if res.FinishReason != "stop" || res.Usage == nil || res.Usage.CompletionTokens != len(deltas) ||
				res.Usage.PromptTokens != 1+len(strings.Fields(tc.prompt)) {
				t.Fatalf("result %+v %+v", res, res.Usage)
			}
		})
	}
}

func TestMaxTokens(t *testing.T) {
	t.Parallel()
	req := request("hi")
	req.MaxTokens = 5
	var n int
	res, err := demo.New(demo.Options{Delay: -1}).Stream(context.Background(), req, func(string) { n++ })
	if err != nil || n != 5 || res.FinishReason != "length" {
		t.Fatalf("err %v, %d deltas, finish %q", err, n, res.FinishReason)
	}
}

func TestPaceAndCancel(t *testing.T) {
	t.Parallel()
	m := demo.New(demo.Options{Delay: 20 * time.Millisecond})
	cause := errors.New("stop pressed")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var n int
	start := time.Now()
	var cancelledAt time.Time
	_, err := m.Stream(ctx, request("hi"), func(string) {
		if n++; n == 5 {
			cancelledAt = time.Now()
			cancel(cause)
		}
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("err %v", err)
	}
	if n != 5 {
		t.Fatalf("%d deltas after cancel at 5", n)
	}
	if paced := cancelledAt.Sub(start); paced < 4*20*time.Millisecond {
		t.Fatalf("5 tokens in %v: not paced", paced)
	}
	if since := time.Since(cancelledAt); since > 10*time.Second { // a hang bound: n says no token came after
		t.Fatalf("returned %v after cancel", since)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	m := demo.New(demo.Options{})
	models, err := m.Models(context.Background())
	if err != nil || len(models) != 1 || !reflect.DeepEqual(models[0], demo.Info()) || !models[0].Demo || models[0].ID != "demo" {
		t.Fatalf("models %+v, %v", models, err)
	}
	if !strings.Contains(models[0].Name, "Demo") {
		t.Fatalf("name %q does not say demo", models[0].Name)
	}
}
