package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
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
		HTTPClient: &http.Client{Transport: replay(body)}})
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

// replay answers every request with body, one SSE event per Read.
type replay []byte

func (r replay) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/event-stream"}},
		ContentLength: -1, Body: io.NopCloser(&events{b: r}), Request: req}, nil
}

// events returns one SSE event (up to its blank line) per Read.
type events struct{ b []byte }

func (e *events) Read(p []byte) (int, error) {
	if len(e.b) == 0 {
		return 0, io.EOF
	}
	end := len(e.b)
	if i := bytes.Index(e.b, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	n := copy(p, e.b[:end])
	e.b = e.b[n:]
	return n, nil
}
