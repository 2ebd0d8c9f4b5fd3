package openai_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestNoGoroutineLeak runs streams that end in every way and checks that
// the goroutines return to their baseline. It is not parallel, so the
// other (paused) tests do not disturb the count.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 20, Delay: time.Millisecond}})
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := newClient(srv.URL, func(o *openai.Options) {
			o.HTTPClient = &http.Client{Transport: tr}
			o.FirstTokenTimeout, o.IdleTimeout = 200*time.Millisecond, 200*time.Millisecond
		})
		for _, p := range []string{"ok", "[[fake fault=429 times=1]]", "[[fake fault=hang_first]]",
			"[[fake fault=hang_mid after=3]]", "[[fake fault=cut_mid after=3]]", "[[fake fault=malformed after=2]]"} {
			stream(testCtx(t), c, p, 0)
		}
		ctx, cancel := context.WithCancel(testCtx(t))
		go func() {
			for srv.ActiveStreams() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		if r := stream(ctx, c, "[[fake tokens=1000 delay=1ms]]", 0); r.err == nil {
			t.Fatal("the cancelled stream did not fail")
		}
		srv.Close()
		srv.HTTP.Close()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
