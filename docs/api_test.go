package docs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// route is one documented route: a row of a route table.
type route struct {
	method, path string // path as documented, with :id and the query
	status       int    // the first status the row names; 0: none
	where        string
}

var (
	routeCellRe = regexp.MustCompile("^`(GET|POST|PATCH|PUT|DELETE) (/[^` ]*)`")
	aliasRe     = regexp.MustCompile("\\(also `(/[^`]+)`\\)")
	statusRe    = regexp.MustCompile(`\b([1-5]\d\d)\b`)
)

// routes reads the route tables of a document: rows whose first cell is
// "`METHOD /path`", each alias "(also `/path`)" as a route of its own.
func routes(t *testing.T, file string) []route {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []route
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "/"), " | ")
		m := routeCellRe.FindStringSubmatch(strings.TrimPrefix(cells[0], "| "))
		if m == nil {
			continue
		}
		r := route{method: m[1], path: m[2], where: file + ":" + strconv.Itoa(i+1)}
		if s := statusRe.FindStringSubmatch(cells[len(cells)-1]); s != nil {
			r.status, _ = strconv.Atoi(s[1])
		}
		out = append(out, r)
		for _, a := range aliasRe.FindAllStringSubmatch(cells[0], -1) {
			alias := r
			alias.path = a[1]
			out = append(out, alias)
		}
	}
	return out
}

// requestBodies are valid bodies for the documented routes that take one;
// a new documented POST or PATCH route needs one here.
var requestBodies = map[string]string{
	"POST /api/auth/register":                `{"email":"grace@example.com","password":"another good one","name":"Grace"}`,
	"POST /api/auth/login":                   `{"email":"ada@example.com","password":"correct horse battery"}`,
	"POST /api/conversations":                `{"title":"Docs","clientId":"docs-1"}`,
	"PATCH /api/conversations/:id":           `{"title":"Renamed"}`,
	"POST /api/conversations/:id/messages":   `{"content":"Hello"}`,
	"POST /api/conversations/:id/regenerate": `{}`,
	"POST /api/auth/logout":                  ``,
	"DELETE /api/auth/me":                    `{"password":"yet another one"}`,
	"PATCH /api/auth/me":                     `{"currentPassword":"yet another one","newPassword":"a new one, longer"}`,
	"POST /api/conversations/:id/cancel":     ``,
	"DELETE /api/conversations/:id":          ``,
	"GET /api/conversations/:id/export":      ``,
	"GET /api/conversations/:id/stream":      ``,
	"GET /api/events":                        ``,
	"GET /api/conversations":                 ``,
	"GET /api/conversations/:id":             ``,
	"GET /api/conversations/:id/messages":    ``,
	"GET /api/auth/me":                       ``,
	"GET /api/models":                        ``,
	"GET /healthz":                           ``,
	"GET /api/healthz":                       ``,
	"GET /readyz":                            ``,
	"GET /api/readyz":                        ``,
	"GET /metrics":                           ``,
}

// TestDocumentedRoutes calls every route the route tables of api.md and
// protocol.md list, signed in, with a valid body: each exists and answers
// the first status its row names (api.md) or at least is no unknown route
// (protocol.md's streaming routes).
func TestDocumentedRoutes(t *testing.T) {
	t.Parallel()
	apiRoutes, liveRoutes := routes(t, "api.md"), routes(t, "protocol.md")
	if len(apiRoutes) < 14 || len(liveRoutes) < 5 {
		t.Fatalf("found %d routes in api.md and %d in protocol.md", len(apiRoutes), len(liveRoutes))
	}
	srv := startServer(t)
	reg := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
		`{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}`)
	if reg.status != http.StatusCreated {
		t.Fatalf("register: %d %s", reg.status, reg.body)
	}
	token := reg.field(t, "token")
	newConversation := func() string {
		return do(t, http.MethodPost, srv.URL+"/api/conversations", token, `{}`).field(t, "conversation.id")
	}
	shared := newConversation()

	var enders []route // last: they end the session
	for _, r := range append(apiRoutes, liveRoutes...) {
		path, _, _ := strings.Cut(r.path, "?")
		if sessionEnders[r.method+" "+path] {
			enders = append(enders, r)
			continue
		}
		conv := shared
		if r.method == http.MethodDelete {
			conv = newConversation()
		}
		checkRoute(t, srv.URL, token, r, conv, strings.HasPrefix(r.where, "api.md:"))
	}
	if len(enders) != len(sessionEnders) {
		t.Fatalf("found %d of the %d routes that end a session", len(enders), len(sessionEnders))
	}
	for i, r := range enders { // each with an account of its own
		own := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
			fmt.Sprintf(`{"email":"ender%d@example.com","password":"yet another one","name":"Lin"}`, i)).field(t, "token")
		checkRoute(t, srv.URL, own, r, "", true)
		if res := do(t, http.MethodGet, srv.URL+"/api/auth/me", own, ""); res.status != http.StatusUnauthorized {
			t.Fatalf("%s %s: its token afterwards answered %d, want 401", r.method, r.path, res.status)
		}
	}
}

// sessionEnders are the routes after which the token they were called
// with no longer works (logout, a password change, the account's
// deletion).
var sessionEnders = map[string]bool{"POST /api/auth/logout": true, "PATCH /api/auth/me": true, "DELETE /api/auth/me": true}

// checkRoute calls one documented route on conversation conv.
func checkRoute(t *testing.T, base, token string, r route, conv string, wantStatus bool) {
	t.Helper()
	path, _, _ := strings.Cut(r.path, "?")
	body, ok := requestBodies[r.method+" "+path]
	if !ok {
		t.Errorf("%s: %s %s is documented but the test has no request for it; add one to requestBodies", r.where, r.method, path)
		return
	}
	url := base + strings.ReplaceAll(path, ":id", conv)
	if strings.HasSuffix(path, "/export") {
		url += "?format=json"
	}
	status, text := call(t, r.method, url, token, body)
	if status == http.StatusMethodNotAllowed || (status == http.StatusNotFound && strings.Contains(text, "no such route")) {
		t.Errorf("%s: %s %s is not a route of the server (%d %s)", r.where, r.method, path, status, text)
		return
	}
	if wantStatus && r.status != 0 && status != r.status {
		t.Errorf("%s: %s %s answered %d, documented %d (%s)", r.where, r.method, path, status, r.status, text)
	}
}

// call sends a request and returns the status and the start of the body;
// it does not wait for a stream to end.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return res.StatusCode, "(a stream)"
	}
	buf := make([]byte, 512)
	n, _ := readWithin(res, buf, 5*time.Second)
	return res.StatusCode, string(buf[:n])
}

// readWithin reads the start of a body, giving up after d.
func readWithin(res *http.Response, buf []byte, d time.Duration) (int, error) {
	timer := time.AfterFunc(d, func() { res.Body.Close() })
	defer timer.Stop()
	n := 0
	for n < len(buf) {
		k, err := res.Body.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestDocumentedMethodNotAllowed: a route asked with a method it does not
// take answers as api.md says: 405, the body and the Allow header it
// shows, before any token check (no token is sent).
func TestDocumentedMethodNotAllowed(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("api.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("asked with a method it does\\s+not take \\(`([A-Z]+) (/[^`]+)`\\), answers a JSON 405\\s+`method_not_allowed` \\(`(\\{[^`]+\\})`\\)\\s+with an `Allow` header naming the methods it takes \\(`Allow: ([^`]+)`\\),\\s+before any token is checked").
		FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("api.md no longer says what a route asked with another method answers: reworded? update this test with it")
	}
	srv := startServer(t)
	res := do(t, m[1], srv.URL+m[2], "", "")
	var got, want any
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatalf("%s %s: %d %s: %v", m[1], m[2], res.status, res.body, err)
	}
	if err := json.Unmarshal([]byte(m[3]), &want); err != nil {
		t.Fatalf("api.md's body %s: %v", m[3], err)
	}
	if res.status != http.StatusMethodNotAllowed || !reflect.DeepEqual(got, want) || res.header.Get("Allow") != m[4] {
		t.Errorf("%s %s answered %d %s, Allow %q; api.md says 405 %s, Allow %q",
			m[1], m[2], res.status, res.body, res.header.Get("Allow"), m[3], m[4])
	}
}

// TestDocumentedPageLimits: each route of api.md whose row states a range
// for ?limit= ("1 to 100, default 30") takes its maximum and refuses one
// past it, and 0, with 400 invalid_field; every route taking limit= in
// api.md states its range.
func TestDocumentedPageLimits(t *testing.T) {
	t.Parallel()
	rangeRe := regexp.MustCompile("`limit`[^|]*?\\(1 to (\\d+), default (\\d+)")
	data, err := os.ReadFile("api.md")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t)
	token := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
		`{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}`).field(t, "token")
	conv := do(t, http.MethodPost, srv.URL+"/api/conversations", token, `{}`).field(t, "conversation.id")
	checked := 0
	for i, line := range strings.Split(string(data), "\n") {
		m := routeCellRe.FindStringSubmatch(strings.TrimPrefix(line, "| "))
		if m == nil || !strings.Contains(m[2], "limit=") {
			continue
		}
		where := fmt.Sprintf("api.md:%d", i+1)
		r := rangeRe.FindStringSubmatch(line)
		if r == nil {
			t.Errorf("%s: %s %s takes limit= but states no range (1 to N, default D)", where, m[1], m[2])
			continue
		}
		path, _, _ := strings.Cut(strings.ReplaceAll(m[2], ":id", conv), "?")
		max, _ := strconv.Atoi(r[1])
		for _, c := range []struct {
			limit  int
			status int
		}{{max, http.StatusOK}, {max + 1, http.StatusBadRequest}, {0, http.StatusBadRequest}} {
			res := do(t, http.MethodGet, fmt.Sprintf("%s%s?limit=%d", srv.URL, path, c.limit), token, "")
			if res.status != c.status || (c.status == http.StatusBadRequest && !strings.Contains(string(res.body), "from 1 to "+r[1])) {
				t.Errorf("%s: %s?limit=%d answered %d %s; api.md states 1 to %s", where, path, c.limit, res.status, res.body, r[1])
			}
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("checked %d routes taking limit=, want the 3 of api.md", checked)
	}
}
