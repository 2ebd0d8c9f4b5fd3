package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/internal/reqtimeout"
)

// hangingUsers is a store that does not answer while hang is set (every
// read waits for its context to end) and finds every user at token
// version 0 otherwise.
type hangingUsers struct{ hang bool }

func (s hangingUsers) UserByID(ctx context.Context, id string) (persistence.User, error) {
	if !s.hang {
		return persistence.User{ID: id}, nil
	}
	<-ctx.Done()
	return persistence.User{}, ctx.Err()
}

// TestMiddlewareCheckTimeout: the token check in front of every API
// request gives up on a store that does not answer after
// Options.CheckTimeout and answers 503 unavailable with Retry-After, where
// the request waited for as long as the store hung (here, until the
// client gave up). The handler behind it gets a context the check's bound
// does not end.
func TestMiddlewareCheckTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hang  bool
		bound time.Duration // CheckTimeout: short where it must end the wait, else ample for a loaded machine
		want  int
	}{
		{"a store that does not answer", true, 20 * time.Millisecond, http.StatusServiceUnavailable},
		{"a store that answers", false, 5 * time.Second, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, retry := checkWithinAfter(t, hangingUsers{hang: tc.hang}, tc.bound, nil); status != tc.want || (status == http.StatusServiceUnavailable) != (retry != "") {
				t.Fatalf("status %d, Retry-After %q; want %d (503 with Retry-After)", status, retry, tc.want)
			}
		})
	}
}

// TestMiddlewareCheckCountsFromStart: the token check's bound counts from
// the request's start (reqtimeout.Start), the deadline the route behind it
// shares, not from the check's own start: a request that already spent its
// bound before the check (here, started an hour ago with a bound of an
// hour) is answered 503 at once, where the check used to wait on the store
// for the whole bound again.
func TestMiddlewareCheckCountsFromStart(t *testing.T) {
	t.Parallel()
	startedAnHourAgo := func(c *gin.Context) {
		c.Request = c.Request.WithContext(reqtimeout.WithStart(c.Request.Context(), time.Now().Add(-time.Hour)))
		c.Next()
	}
	status, retry := checkWithinAfter(t, hangingUsers{hang: true}, time.Hour, startedAnHourAgo)
	if status != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", status, retry)
	}
}

// checkWithinAfter serves a route behind the middleware of an
// Authenticator over users with CheckTimeout bound, whose handler fails
// unless its request context is free of that bound, its route behind
// before (when set) as well, and calls it with a valid token.
func checkWithinAfter(t *testing.T, users UserFinder, bound time.Duration, before gin.HandlerFunc) (status int, retryAfter string) {
	t.Helper()
	authn, err := NewAuthenticator(users, Options{Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		CheckTimeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := authn.Issue(persistence.User{ID: persistence.NewID()})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	if before != nil {
		r.Use(before)
	}
	r.GET("/", authn.Middleware(), func(c *gin.Context) {
		if _, bounded := c.Request.Context().Deadline(); bounded || c.Request.Context().Err() != nil {
			c.Status(http.StatusTeapot) // the check's bound reached the handler
			return
		}
		c.Status(http.StatusNoContent)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	// The client's own bound only keeps a regression from hanging the test.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After")
}
