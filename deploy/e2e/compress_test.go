package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNginxCompressesHistoryNotStreams: through nginx.conf, the REST page of
// older messages (GET /api/conversations/<id>/messages, up to 500 messages)
// is gzip-compressed for a client that accepts it, although it shares its
// path with the SSE route that posts a message, and that route's event
// stream is still neither compressed nor held back.
//
// Accept-Encoding is set by hand: Go's transport otherwise asks for gzip
// itself and hides the Content-Encoding of what it decompressed.
func TestNginxCompressesHistoryNotStreams(t *testing.T) {
	srv := startChatd(t, chatdOptions{Extra: []string{"CHATD_DEMO_DELAY=1ms"}})
	site := startNginx(t, nginxOptions{Root: t.TempDir(), Upstream: srv.Addr})
	c := site.Client(true)
	a := register(t, c, site.Origin())
	convID := newConversation(t, c, site.Origin(), a.Token)
	// Long enough that the page's JSON is past gzip_min_length.
	prompt := "Compress the history. " + strings.Repeat("A sentence that repeats itself. ", 60)

	t.Run("the sse answer is not compressed", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{"content": prompt})
		req, _ := http.NewRequest(http.MethodPost, site.URL("/api/conversations/"+convID+"/messages"), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+a.Token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("SSE request: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "" {
			t.Errorf("SSE answer has Content-Encoding %q: events would be held back", enc)
		}
		evs, err := readSSE(resp.Body, time.Now())
		if err != nil {
			t.Fatalf("read SSE (plain text expected): %v", err)
		}
		if len(evs) == 0 || evs[len(evs)-1].Event != "done" {
			t.Fatalf("SSE stream does not end with done: %+v", evs)
		}
	})

	t.Run("the page of older messages is gzip-compressed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, site.URL("/api/conversations/"+convID+"/messages?limit=500"), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+a.Token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET messages: %d: %s", resp.StatusCode, b)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "gzip" {
			t.Fatalf("GET messages: Content-Encoding %q, want gzip", enc)
		}
		var page struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		if err := decodeGzipJSON(resp.Body, &page); err != nil {
			t.Fatalf("GET messages: %v", err)
		}
		if len(page.Messages) != 2 || page.Messages[0].Content != prompt {
			t.Fatalf("GET messages: %d messages, want the prompt and its answer: %+v", len(page.Messages), page.Messages)
		}
	})
}

// decodeGzipJSON decodes a gzip-compressed JSON body into out.
func decodeGzipJSON(body io.Reader, out any) error {
	zr, err := gzip.NewReader(body)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	if err := json.NewDecoder(zr).Decode(out); err != nil {
		return fmt.Errorf("decode the gunzipped JSON: %w", err)
	}
	return nil
}
