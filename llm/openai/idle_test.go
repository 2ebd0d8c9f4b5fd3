package openai_test

import (
	"context"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestIdleTimeoutNeedsText: once text flows, chunks that carry none (an
// upstream that keeps the stream alive without a token, forever) do not
// hold the idle timeout off: the answer ends about one idle timeout after
// its last piece of text, as the longest pause between two tokens
// (CHATD_IDLE_TIMEOUT), not at the answer's overall limit. The four
// tokens come at once and the idle timeout is 2 s, so no pause of the
// machine between two of them reaches it (300ms after tokens 20ms apart
// failed under load, and a loaded machine can hold a goroutine for a
// second or two); the answer's limit is 20 idle timeouts.
func TestIdleTimeoutNeedsText(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	c := newClient(srv.URL, func(o *openai.Options) { o.IdleTimeout = 2 * time.Second })
	ctx, cancel := context.WithTimeout(testCtx(t), 40*time.Second) // far past the idle timeout
	defer cancel()
	r := stream(ctx, c, "[[fake tokens=10 after=4 delay=0ms fault=empty_mid]]", 0)
	if llm.KindOf(r.err) != llm.KindTimeout {
		t.Fatalf("err %v, want the idle timeout", r.err)
	}
	if want := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 10}, 4); r.text() != want {
		t.Fatalf("text %q, want %q", r.text(), want)
	}
	if err := srv.WaitAbort(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}
