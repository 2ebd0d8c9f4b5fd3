package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestReadAnswerChecksText: the writes scenario's answer must be the text
// the fake streamed, whole and exact, as docs/benchmarks.md says; it took
// any complete done's seq as the text's length without looking at the text.
func TestReadAnswerChecksText(t *testing.T) {
	t.Parallel()
	const want = "héllo wörld "
	for _, c := range []struct {
		name   string
		frames []string
		ok     bool
	}{
		{"whole", []string{`{"type":"ack","id":"w"}`, `{"type":"delta","seq":15,"text":"[ts:12] héllo "}`,
			`{"type":"delta","seq":22,"text":"wörld "}`, `{"type":"done","seq":22,"status":"complete"}`}, true},
		{"other text, same length", []string{`{"type":"delta","seq":14,"text":"hallo, world! "}`,
			`{"type":"done","seq":14,"status":"complete"}`}, false},
		{"a delta lost", []string{`{"type":"delta","seq":7,"text":"héllo "}`, `{"type":"done","seq":14,"status":"complete"}`}, false},
		{"done without deltas", []string{`{"type":"done","seq":14,"status":"complete"}`}, false},
		{"seq that skips", []string{`{"type":"delta","seq":9,"text":"héllo "}`, `{"type":"delta","seq":16,"text":"wörld "}`,
			`{"type":"done","seq":16,"status":"complete"}`}, false},
		{"error", []string{`{"type":"done","seq":0,"status":"error"}`}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer ws.CloseNow()
				for _, f := range c.frames {
					if ws.Write(r.Context(), websocket.MessageText, []byte(f)) != nil {
						return
					}
				}
				_, _, _ = ws.Read(r.Context()) // until the client leaves
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			n, err := readAnswer(ctx, conn, want)
			if c.ok && (err != nil || n != len("[ts:12] ")+len(want)) {
				t.Fatalf("readAnswer: %d, %v; want %d bytes", n, err, len("[ts:12] ")+len(want))
			}
			if !c.ok && err == nil {
				t.Fatalf("readAnswer took a wrong answer (%d bytes)", n)
			}
		})
	}
}
