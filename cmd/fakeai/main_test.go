package main

import (
	"chatd/internal/syncbuf"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/llm/fakeai"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunServesAndShutsDown(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr, "-tokens", "3", "-delay", "1ms", "-log-level", "debug"}, &logs)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 3})
	for _, tok := range fakeai.Tokens(fakeai.Config{Tokens: 3}) {
		if !strings.Contains(string(raw), `"content":"`+tok+`"`) {
			t.Fatalf("stream lacks token %q of %q:\n%s", tok, want, raw)
		}
	}

	// A hanging stream must not hold the shutdown up.
	hang := `{"model":"m","stream":true,"messages":[{"role":"user","content":"[[fake fault=hang_first]]"}]}`
	hresp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(hang))
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	for _, want := range []string{"fakeai listening", "fakeai request", "fakeai stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"-fault", "429", "-retry-after", "2s", "-times", "1"}, false},
		{[]string{"-fault", "explode"}, true},
		{[]string{"-mode", "poetry"}, true},
		{[]string{"-stamp", "first", "-mode", "markdown"}, false},
		{[]string{"extra"}, true},
		{[]string{"-reasoning", "8", "-reasoning-key", "mixed", "-surrogates", "-context", "100", "-context-length", "4096"}, false},
		{[]string{"-reasoning-key", "thoughts"}, true},
		{[]string{"-reasoning-key", "parts"}, false},
		{[]string{"-reasoning", "8", "-reasoning-key", "think", "-pieces", "3"}, false},
		{[]string{"-reasoning", "8", "-reasoning-key", "think_open"}, false},
		{[]string{"-pieces", "-1"}, true},
		{[]string{"-refuse", "max_tokens"}, false},
		{[]string{"-refuse", "temperature"}, false},
		{[]string{"-refuse", "max_token"}, true},
		{[]string{"-context", "100", "-context-words", "bare"}, false},
		{[]string{"-context-words", "poem"}, true},
		{[]string{"-framing", "cr"}, false},
		{[]string{"-framing", "lfcr"}, true},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFlags(%q) error %v, want error %v", tc.args, err, tc.wantErr)
		}
	}
	c, err := parseFlags([]string{"-reasoning", "8", "-reasoning-key", "reasoning", "-surrogates", "-context", "100", "-context-length", "4096",
		"-refuse", "max_tokens", "-context-words", "vllm", "-framing", "multiline", "-pieces", "2"}, io.Discard)
	d := c.opts.Defaults
	if err != nil || d.Reasoning != 8 || d.ReasoningKey != "reasoning" || !d.Surrogates || d.Context != 100 || c.opts.ContextLength != 4096 ||
		d.Refuse != "max_tokens" || d.ContextWords != fakeai.ContextVLLM || d.Framing != fakeai.FramingMultiline || d.Pieces != 2 {
		t.Fatalf("parsed %+v, %v", c.opts, err)
	}
}
