package transport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport"
)

// TestAPIAnswersAreNotCached: every /api answer, a user's conversations,
// messages and account above all, carries Cache-Control: no-store, so a
// browser keeps none of them (on disk, for whoever uses a shared computer
// after the sign-out). The table holds every GET route of the router (one
// added later fails the test until it is listed), writes, and a route
// added through Register on the authenticated group (as the SSE routes are).
func TestAPIAnswersAreNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			r.Authed.GET("/registered", func(c *gin.Context) { c.String(http.StatusOK, "a user's data") })
		}
	}})
	a := e.register("Cache")
	conv := e.createConversation(a, "private title")
	e.insertMessage(a, conv.ID, "", persistence.RoleUser, "private words")
	convPath := "/api/conversations/" + conv.ID
	cases := []struct {
		method, route, path string
		body                any
		status              int
	}{
		{"GET", "/api/conversations", "/api/conversations", nil, http.StatusOK},
		{"GET", "/api/conversations", "/api/conversations?q=private", nil, http.StatusOK}, // a search
		{"GET", "/api/conversations/:id", convPath, nil, http.StatusOK},
		{"GET", "/api/conversations/:id/messages", convPath + "/messages", nil, http.StatusOK},
		{"GET", "/api/conversations/:id/export", convPath + "/export", nil, http.StatusOK},
		{"GET", "/api/models", "/api/models", nil, http.StatusOK},
		{"GET", "/api/auth/me", "/api/auth/me", nil, http.StatusOK},
		{"GET", "/api/registered", "/api/registered", nil, http.StatusOK},
		{"GET", "/api/healthz", "/api/healthz", nil, http.StatusOK},
		{"GET", "/api/readyz", "/api/readyz", nil, http.StatusOK},
		{"POST", "/api/conversations", "/api/conversations", map[string]string{"title": "another"}, http.StatusCreated},
		{"PATCH", "/api/conversations/:id", convPath, map[string]string{"title": "renamed"}, http.StatusOK},
	}
	listed := map[string]bool{}
	for _, c := range cases {
		listed[c.method+" "+c.route] = true
		r := e.do(c.method, c.path, a.token, c.body)
		expect(t, c.method+" "+c.path, r, c.status, "")
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", c.method, c.path, got)
		}
	}
	for _, route := range e.routes {
		if route.Method == http.MethodGet && strings.HasPrefix(route.Path, "/api/") && !listed["GET "+route.Path] {
			t.Errorf("GET %s is not in the table", route.Path)
		}
	}
}
