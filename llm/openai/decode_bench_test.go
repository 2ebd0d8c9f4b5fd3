package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"testing"

	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// BenchmarkStreamDecode measures the client's own cost per token: a
// 500-token answer recorded from fakeai (as the bench's cpu scenario asks
// for it: every token stamped, usage included) is replayed one SSE event
// per Read, so the numbers leave out the network and the server.
func BenchmarkStreamDecode(b *testing.B) {
	const tokens = 500
	body := recordStream(b, fakeai.Config{Tokens: tokens, Stamp: fakeai.StampAll})
	c := openai.New(openai.Options{BaseURL: "http://replay.invalid/v1",
		HTTPClient: &http.Client{Transport: replay{body: body}}})
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := c.Stream(ctx, request("go"), func(s string) { n += len(s) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	if n == 0 {
		b.Fatal("no text")
	}
}

// BenchmarkStreamDecodeInterleaved is BenchmarkStreamDecode with 200
// streams at once that take turns after every event, as a server's streams
// do when tokens arrive one at a time: each chunk is decoded with cold
// caches. It reports the process's CPU time per token.
func BenchmarkStreamDecodeInterleaved(b *testing.B) {
	const tokens = 500
	body := recordStream(b, fakeai.Config{Tokens: tokens, Stamp: fakeai.StampAll})
	c := openai.New(openai.Options{BaseURL: "http://replay.invalid/v1",
		HTTPClient: &http.Client{Transport: replay{body: body, yield: true}}})
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(100)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Stream(ctx, request("go"), func(string) {}); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*tokens), "cpu-ns/token")
}

// recordStream returns the SSE body fakeai streams for cfg.
func recordStream(tb testing.TB, cfg fakeai.Config) []byte {
	tb.Helper()
	srv := fakeai.Start(tb, fakeai.Options{Defaults: cfg})
	req, _ := json.Marshal(map[string]any{"model": "fake-mini", "stream": true,
		"stream_options": map[string]bool{"include_usage": true},
		"messages":       []map[string]string{{"role": "user", "content": "go"}}})
	res, err := http.Post(srv.URL+"/chat/completions", "application/json", bytes.NewReader(req))
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("record: status %d, %v", res.StatusCode, err)
	}
	return body
}

// replay answers every request with body, one SSE event per Read; with
// yield, the reading goroutine lets the others run after every event.
type replay struct {
	body  []byte
	yield bool
}

func (r replay) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/event-stream"}},
		ContentLength: -1, Body: io.NopCloser(&events{b: r.body, yield: r.yield}), Request: req}, nil
}

// events returns one SSE event (up to its blank line) per Read.
type events struct {
	b     []byte
	yield bool
}

func (e *events) Read(p []byte) (int, error) {
	if len(e.b) == 0 {
		return 0, io.EOF
	}
	if e.yield {
		runtime.Gosched()
	}
	end := len(e.b)
	if i := bytes.Index(e.b, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	n := copy(p, e.b[:end])
	e.b = e.b[n:]
	return n, nil
}
