package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestProbeUpstream: at start, an upstream that refuses connections or
// the API key is reported in a line naming the setting to check (and
// never the key), a warning for the connections, an error for the key
// (kept at CHATD_LOG_LEVEL=error: every answer fails until the operator
// acts); one that answers, or has no model list, is not; the demo model
// asks nothing.
func TestProbeUpstream(t *testing.T) {
	t.Parallel()
	upstream := func(status int) (string, *atomic.Int32) {
		var asked atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/models" && r.Header.Get("Authorization") == "Bearer sk-secret-key" {
				asked.Add(1)
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1", &asked
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + ln.Addr().String() + "/v1"
	ln.Close() // nothing listens there now
	okURL, okAsked := upstream(http.StatusOK)
	keyURL, keyAsked := upstream(http.StatusUnauthorized)
	deniedURL, deniedAsked := upstream(http.StatusForbidden)
	noListURL, noListAsked := upstream(http.StatusNotFound)
	cases := []struct {
		name  string
		cfg   Config
		want  string // "" for no warning
		asked *atomic.Int32
	}{
		{"refuses connections", Config{OpenAIBaseURL: refusing, OpenAIKey: "sk-secret-key"},
			`"level":"WARN","msg":"model upstream unreachable: answers will fail ('Could not reach the model provider') until it answers; check OPENAI_BASE_URL and that the server runs","url":"` + refusing + `/models"`, nil},
		{"refuses the key", Config{OpenAIBaseURL: keyURL, OpenAIKey: "sk-secret-key"},
			`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check OPENAI_API_KEY"`, keyAsked},
		{"refuses access", Config{OpenAIBaseURL: deniedURL, OpenAIKey: "sk-secret-key"},
			`"level":"ERROR","msg":"model upstream refused the API key: answers will fail until it accepts one; check OPENAI_API_KEY","url":"` + deniedURL + `/models","status":403`, deniedAsked},
		{"answers", Config{OpenAIBaseURL: okURL, OpenAIKey: "sk-secret-key"}, "", okAsked},
		{"no model list", Config{OpenAIBaseURL: noListURL, OpenAIKey: "sk-secret-key"}, "", noListAsked},
		{"demo model", Config{OpenAIBaseURL: "https://api.openai.com/v1"}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var logs strings.Builder
			probeUpstream(context.Background(), c.cfg, &http.Client{}, slog.New(slog.NewJSONHandler(&logs, nil)))
			got := logs.String()
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("logged %q, want %q", got, c.want)
			}
			if strings.Contains(got, "sk-secret-key") {
				t.Errorf("the key was logged: %s", got)
			}
			if c.asked != nil && c.asked.Load() != 1 {
				t.Errorf("the upstream was asked for its models with the key %d times, want once", c.asked.Load())
			}
		})
	}
}
