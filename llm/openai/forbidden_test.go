package openai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestForbiddenSaysWhy: an HTTP 403 is not only a bad key (OpenAI refuses
// a country it does not serve so, OpenRouter an input its moderation
// flagged, Azure a client outside its network rules): the message quotes
// the provider's reason, where it said only "check the API key". A 401
// still names the credentials, without quoting (a careless upstream
// repeats the key). Neither is retried.
func TestForbiddenSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		marker, want, notWant string
	}{
		{"fault=403", "The model provider refused access (check the API key and what its account may use): Country, region, or territory not supported", ""},
		{"fault=401", "The model provider refused the credentials; check the API key.", "Fake error"},
	}
	for _, tc := range tests {
		t.Run(tc.marker, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			r := stream(testCtx(t), newClient(srv.URL, nil), "[[fake "+tc.marker+"]]", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest {
				t.Fatalf("err %v, want bad_request", r.err)
			}
			if !strings.HasPrefix(e.Message, tc.want) || tc.notWant != "" && strings.Contains(e.Message, tc.notWant) {
				t.Fatalf("message %q, want %q", e.Message, tc.want)
			}
			if got := srv.Requests(); got != 1 {
				t.Fatalf("server saw %d requests, want 1", got)
			}
		})
	}
}

// TestRefusalHidesConfiguredSecrets: an upstream whose refusal repeats
// what it was sent (the api-key header, a query parameter's signature,
// an Authorization header's token) has those values redacted from the
// message shown, as the API key was: README has Azure users put their key
// in headers or query, whose values were quoted as they came. The
// api-version stays readable.
func TestRefusalHidesConfiguredSecrets(t *testing.T) {
	t.Parallel()
	const (
		headerKey = "azure-header-secret-123"
		querySig  = "sv=2024&sig=q/secret+value"
		bearer    = "proxy-token-456789"
	)
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				msg := fmt.Sprintf("Denied: api-key %s, sig %s (raw query %s), auth %q, api-version %s",
					r.Header.Get("api-key"), r.URL.Query().Get("sig"), r.URL.RawQuery, r.Header.Get("X-Proxy-Auth"),
					r.URL.Query().Get("api-version"))
				body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg}})
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write(body)
			}))
			t.Cleanup(srv.Close)
			var logs bytes.Buffer
			c := newClient(srv.URL, func(o *openai.Options) {
				o.APIKey = ""
				o.Headers = map[string]string{"api-key": headerKey, "X-Proxy-Auth": "Bearer " + bearer}
				o.Query = map[string]string{"sig": querySig, "api-version": "2024-06-01"}
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			r := stream(testCtx(t), c, "hi", 0)
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest || !strings.Contains(e.Message, "Denied: api-key [redacted]") {
				t.Fatalf("err %v, want a bad_request quoting the refusal", r.err)
			}
			for _, secret := range []string{headerKey, querySig, url.QueryEscape(querySig), bearer} {
				if strings.Contains(e.Message, secret) || strings.Contains(logs.String(), secret) {
					t.Fatalf("%q shown: message %q\nlogs %s", secret, e.Message, logs.String())
				}
			}
			if !strings.Contains(e.Message, "api-version 2024-06-01") {
				t.Fatalf("message %q lost the api-version", e.Message)
			}
		})
	}
}
