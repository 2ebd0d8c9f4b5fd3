package openai_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestRedirectedRequest: a base URL that redirects a chat request (a
// proxy sending http to https, a moved path) with 301, 302 or 303, which
// an HTTP client follows as a GET, fails at once saying where it leads,
// where the request reached the target as a GET and failed as rejected
// (HTTP 405, or 404) with nothing saying why; a redirect that keeps the
// method (307, 308) is followed as before.
func TestRedirectedRequest(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			fake := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				http.Redirect(w, r, fake.URL+"/chat/completions", code)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL+"/v1", nil), "hi", 0)
			if code >= 307 {
				if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
					t.Fatalf("err %v text %q, want the redirect followed", r.err, r.text())
				}
				return
			}
			var e *llm.Error
			if !errors.As(r.err, &e) || e.Kind != llm.KindBadRequest || e.Status != code ||
				!strings.Contains(e.Message, fake.URL+"/chat/completions") || !strings.Contains(e.Message, "base URL") {
				t.Fatalf("err %v, want bad_request (HTTP %d) naming where it leads", r.err, code)
			}
			if n.Load() != 1 || fake.Requests() != 0 {
				t.Fatalf("%d requests redirected, %d reached the target: want 1 and 0", n.Load(), fake.Requests())
			}
		})
	}
}
