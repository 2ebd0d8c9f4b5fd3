package openai_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestRedirectedRequest: a base URL that redirects a chat request (a
// proxy sending http to https, a moved path) with 301, 302 or 303, which
// an HTTP client follows as a GET, fails at once saying where it leads,
// where the request reached the target as a GET and failed as rejected
// (HTTP 405, or 404) with nothing saying why; a redirect that keeps the
// method (307, 308) on the same host is followed as before.
func TestRedirectedRequest(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			fake := fakeai.New(fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
			t.Cleanup(fake.Close)
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/") {
					n.Add(1)
					http.Redirect(w, r, "/moved/chat/completions", code)
					return
				}
				r.URL.Path = strings.TrimPrefix(r.URL.Path, "/moved")
				fake.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			r := stream(testCtx(t), newClient(srv.URL+"/v1", nil), "hi", 0)
			if code >= 307 {
				if r.err != nil || r.text() != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
					t.Fatalf("err %v text %q, want the redirect followed", r.err, r.text())
				}
				return
			}
			checkRedirectRefused(t, r.err, code, srv.URL+"/moved/chat/completions")
			if n.Load() != 1 || fake.Requests() != 0 {
				t.Fatalf("%d requests redirected, %d reached the target: want 1 and 0", n.Load(), fake.Requests())
			}
		})
	}
}

// TestRedirectToAnotherHost: a base URL that redirects with 307 or 308
// (which keep the method) to another host, or another port, is not
// followed: the target would get the Azure api-key header and every
// Options.Headers value (an HTTP client drops only Authorization and
// cookies). The request fails saying where it leads, as a redirect
// changing the method does, and the target gets nothing.
func TestRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	for _, code := range []int{307, 308} {
		for _, azure := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d azure=%v", code, azure), func(t *testing.T) {
				t.Parallel()
				target := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: 3}})
				to := strings.Replace(target.URL, "127.0.0.1", "localhost", 1) + "/chat/completions"
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, to, code)
				}))
				t.Cleanup(srv.Close)
				c := newClient(srv.URL+"/v1", func(o *openai.Options) {
					o.Azure = azure
					o.Headers = map[string]string{"x-api-key": "hdr-secret-key-1234"}
				})
				r := stream(testCtx(t), c, "hi", 0)
				checkRedirectRefused(t, r.err, code, to)
				if target.Requests() != 0 {
					t.Fatalf("%d requests reached the other host", target.Requests())
				}
			})
		}
	}
}

// checkRedirectRefused fails unless err is a bad request (HTTP code)
// saying the base URL leads to to.
func checkRedirectRefused(t *testing.T, err error, code int, to string) {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindBadRequest || e.Status != code ||
		!strings.Contains(e.Message, to) || !strings.Contains(e.Message, "base URL") {
		t.Fatalf("err %v, want bad_request (HTTP %d) naming where it leads (%s)", err, code, to)
	}
}
