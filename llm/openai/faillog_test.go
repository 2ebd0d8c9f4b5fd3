package openai_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chatd/internal/syncbuf"
	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestFailureNamesTheUpstream: an answer whose upstream cannot be reached
// (or fails it otherwise) is logged naming that upstream's URL, without
// its credentials, and the cause, without the API key; each retry's line
// names the URL too. Before, no line of the answer named the URL (only
// the start-up probe did, and only for OPENAI_BASE_URL).
func TestFailureNamesTheUpstream(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	srv := fakeai.Start(t, fakeai.Options{})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body>\n"+strings.Repeat("<p>bad gateway</p>\n", 5000)+"</body></html>")
	}))
	t.Cleanup(page.Close)
	tests := []struct {
		name, base, prompt string
		kind               llm.ErrorKind
		shown, cause       string
	}{
		{"unreachable", "http://user:s3cret@" + addr + "/v1?token=s3cret", "hi", llm.KindConnection,
			"http://" + addr + "/v1", "connection refused"},
		{"server error", srv.URL, "[[fake fault=500]]", llm.KindUpstream, srv.URL, "500"},
		{"a long error page", page.URL + "/v1", "hi", llm.KindUpstream, page.URL + "/v1", "<p>bad gateway</p> <p>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &recorder{}
			c := newClient(tc.base, func(o *openai.Options) { o.MaxRetries = 1; o.Logger = slog.New(logs) })
			r := stream(llm.WithRequestID(testCtx(t), "gen-1"), c, tc.prompt, 0)
			if llm.KindOf(r.err) != tc.kind {
				t.Fatalf("err %v, want %s", r.err, tc.kind)
			}
			warnings := logs.warnings()
			if len(warnings) != 2 || !strings.HasPrefix(warnings[0], "llm upstream retry ") ||
				!strings.HasPrefix(warnings[1], "llm upstream request failed ") {
				t.Fatalf("warnings %q, want a retry and the failure", warnings)
			}
			for _, w := range warnings {
				if !strings.Contains(w, "url="+tc.shown+" ") || !strings.Contains(w, "generation=gen-1") {
					t.Errorf("%q does not name url=%s and the generation", w, tc.shown)
				}
				if strings.Contains(w, "s3cret") || strings.Contains(w, testKey) {
					t.Errorf("%q shows a credential", w)
				}
			}
			if !strings.Contains(warnings[1], "kind="+string(tc.kind)) || !strings.Contains(warnings[1], tc.cause) {
				t.Errorf("%q does not say kind %s and the cause %q", warnings[1], tc.kind, tc.cause)
			}
			if len(warnings[1]) > 2000 || strings.Contains(warnings[1], "\n") {
				t.Errorf("failure line of %d bytes (newline: %v), want one short line", len(warnings[1]), strings.Contains(warnings[1], "\n"))
			}
		})
	}
}

// TestRetryWaitReadable: the retry line's wait is a duration as people
// read it ("wait":"12ms"), as the other lines write theirs, not the
// nanoseconds slog's JSON handler makes of a time.Duration
// ("wait":340065484).
func TestRetryWaitReadable(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	var out syncbuf.Buffer
	c := newClient(srv.URL, func(o *openai.Options) {
		o.MaxRetries, o.RetryBase = 1, 12*time.Millisecond
		o.Logger = slog.New(slog.NewJSONHandler(&out, nil))
	})
	if r := stream(testCtx(t), c, "[[fake fault=500]]", 0); r.err == nil {
		t.Fatal("no error")
	}
	for line := range strings.Lines(out.String()) {
		var rec struct {
			Msg  string `json:"msg"`
			Wait any    `json:"wait"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != "llm upstream retry" {
			continue
		}
		s, ok := rec.Wait.(string)
		if d, err := time.ParseDuration(s); !ok || err != nil || d <= 0 || d > 20*time.Millisecond {
			t.Fatalf("wait %#v in %s, want a duration as text of at most RetryMax", rec.Wait, line)
		}
		return
	}
	t.Fatalf("no retry line in %s", out.String())
}

// TestListFailureNamesTheUpstream: a model list that fails is logged (by
// the router) naming the upstream's URL, without its credentials, and
// the cause, without the API key, as a failed chat request is. Before,
// the line said only "connection: Could not reach the model provider."
// (an *llm.Error's text leaves out its cause), and no URL.
func TestListFailureNamesTheUpstream(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	srv.SetModelsStatus(http.StatusBadGateway)
	tests := []struct {
		name, base, shown, cause string
		kind                     llm.ErrorKind
	}{
		{"unresolvable", "http://user:s3cret@no-such-host.invalid/v1?token=s3cret", "http://no-such-host.invalid/v1",
			"no-such-host.invalid", llm.KindConnection},
		{"server error", srv.URL, srv.URL, "status code: 502", llm.KindUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &recorder{}
			c := newClient(tc.base, func(o *openai.Options) { o.Logger = slog.New(logs) })
			r := llm.NewRouter(llm.RouterOptions{Logger: slog.New(logs), FirstListWait: 20 * time.Second,
				Upstreams: []llm.Upstream{{Name: "up", Streamer: c, Catalog: c}}})
			t.Cleanup(r.Close)
			if _, err := r.Models(testCtx(t)); llm.KindOf(err) != tc.kind {
				t.Fatalf("err %v, want %s", err, tc.kind)
			}
			warnings := logs.warnings() // the fetch logged before Models returned
			if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "llm upstream model list failed ") {
				t.Fatalf("warnings %q, want the list's failure", warnings)
			}
			w := warnings[0]
			if !strings.Contains(w, tc.shown+":") || !strings.Contains(w, tc.cause) {
				t.Errorf("%q does not name %s and the cause %q", w, tc.shown, tc.cause)
			}
			if strings.Contains(w, "s3cret") || strings.Contains(w, testKey) {
				t.Errorf("%q shows a credential", w)
			}
		})
	}
}
