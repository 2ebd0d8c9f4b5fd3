package transport_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"

	"chatd/transport"
	"chatd/transport/auth"
)

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) { o.BodyLimit = 4 << 10 }})
	a := e.register("Big")
	huge := `{"title":"` + strings.Repeat("x", 5<<10) + `"}`
	expect(t, "declared length over the limit", e.do("POST", "/api/conversations", a.token, huge), http.StatusRequestEntityTooLarge, "too_large")

	// A chunked body has no declared length: the limit trips while reading.
	e2 := newEnv(t, envOptions{})
	b := e2.register("Chunked")
	req, _ := http.NewRequest("POST", e2.srv.URL+"/api/conversations", &slowReader{data: []byte(`{"systemPrompt":"` + strings.Repeat("y", 2<<20) + `"}`)})
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := e2.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked 2 MiB body: status %d, want 413", res.StatusCode)
	}
	if req.ContentLength != 0 {
		t.Fatalf("the request was not chunked (ContentLength %d)", req.ContentLength)
	}
}

// slowReader hides its length, so the client sends it chunked.
type slowReader struct {
	data []byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(r.data), 64<<10)])
	r.data = r.data[n:]
	return n, nil
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Static = fstest.MapFS{
			"index.html":         {Data: []byte("<html>app</html>")},
			"assets/app-abc1.js": {Data: []byte("console.log(1)")},
			"favicon.svg":        {Data: []byte("<svg/>")},
		}
	}})
	a := e.register("Router")
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/api/nope", 404, "not_found", ""},
		{"GET", "/api", 404, "not_found", ""},
		{"POST", "/api/conversations/x/y/z", 404, "not_found", ""},
		{"DELETE", "/api/nope", 404, "not_found", ""},
		{"GET", "/ws", 404, "not_found", ""},  // nothing registered it here: never the app
		{"POST", "/ws", 404, "not_found", ""}, // nor for another method
		{"POST", "//api/x", 404, "not_found", ""},
		{"GET", "/api/auth/register", 405, "method_not_allowed", "POST"},
		{"PUT", "/api/conversations", 405, "method_not_allowed", "GET, HEAD, POST"},
		// The web client's paths take GET and HEAD, whatever the path.
		{"POST", "/some/app/path", 405, "method_not_allowed", "GET, HEAD"},
		{"POST", "/", 405, "method_not_allowed", "GET, HEAD"},
		{"DELETE", "/assets/app-abc1.js", 405, "method_not_allowed", "GET, HEAD"},
		{"OPTIONS", "/settings", 405, "method_not_allowed", "GET, HEAD"},
	} {
		r := e.do(c.method, c.path, a.token, nil)
		expect(t, c.method+" "+c.path, r, c.status, c.code)
		if got := r.header.Get("Allow"); got != c.allow {
			t.Fatalf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}

	if r := e.do("GET", "/assets/missing.js", "", nil); r.status != 404 {
		t.Fatalf("missing asset: %d %s (never index.html)", r.status, r.body)
	}
	for _, c := range []struct{ path, body, cache string }{
		{"/", "<html>app</html>", "no-cache"},
		{"/c/0123456789abcdef01234567", "<html>app</html>", "no-cache"},
		{"/settings", "<html>app</html>", "no-cache"},
		{"/assets/app-abc1.js", "console.log(1)", "public, max-age=31536000, immutable"},
		{"/favicon.svg", "<svg/>", "no-cache"},
	} {
		r := e.do("GET", c.path, "", nil)
		if r.status != 200 || string(r.body) != c.body || r.header.Get("Cache-Control") != c.cache {
			t.Fatalf("GET %s: %d %q cache %q", c.path, r.status, r.body, r.header.Get("Cache-Control"))
		}
		if c.body == "<html>app</html>" && !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("GET %s: no CSP on the page", c.path)
		}
	}
}

func TestPlaceholderWithoutFrontEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/conversations/anything", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "built without the web client") ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("placeholder: %d %s", r.status, r.body)
	}
	expect(t, "api stays JSON", e.do("GET", "/api/what", "", nil), 404, "not_found")
}

func TestRegisterHookAndRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			r.Engine.GET("/ws", func(c *gin.Context) { c.String(200, "ws here") })
			r.Authed.POST("/conversations/:id/cancel", func(c *gin.Context) {
				id, _ := auth.IdentityFrom(c)
				c.String(200, id.UserID+" "+c.Param("id"))
			})
			r.API.GET("/boom", func(c *gin.Context) { panic("kaboom") })
		}
	}})
	a := e.register("Hooker")
	if r := e.do("GET", "/ws", "", nil); r.status != 200 || string(r.body) != "ws here" {
		t.Fatalf("/ws: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/conversations/abc/cancel", a.token, nil); r.status != 200 || string(r.body) != a.id+" abc" {
		t.Fatalf("authed hook route: %d %s", r.status, r.body)
	}
	expect(t, "authed hook route without token", e.do("POST", "/api/conversations/abc/cancel", "", nil), 401, "unauthorized")
	r := e.do("GET", "/api/boom", "", nil)
	expect(t, "panic", r, 500, "internal")
	if strings.Contains(string(r.body), "kaboom") {
		t.Fatal("the panic value reached the client")
	}
	if !strings.Contains(e.logs.String(), "kaboom") {
		t.Fatal("the panic was not logged")
	}
	// The server still answers.
	expect(t, "after panic", e.do("GET", "/api/auth/me", a.token, nil), 200, "")
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.register("Logger")
	r := e.do("GET", "/api/conversations?q=hush", a.token, nil, "X-Request-ID", "trace-42")
	if r.header.Get("X-Request-ID") != "trace-42" {
		t.Fatalf("X-Request-ID echoed as %q", r.header.Get("X-Request-ID"))
	}
	r = e.do("GET", "/api/auth/me", "", nil, "X-Request-ID", "bad id with spaces")
	generated := r.header.Get("X-Request-ID")
	if generated == "" || strings.Contains(generated, " ") {
		t.Fatalf("generated id %q", generated)
	}

	var found, health bool
	for _, l := range e.logs.lines(t) {
		if l["msg"] != "http request" {
			continue
		}
		switch l["request_id"] {
		case "trace-42":
			found = true
			if l["user_id"] != a.id || l["method"] != "GET" || l["route"] != "/api/conversations" ||
				l["path"] != "/api/conversations" || l["status"] != float64(200) || l["bytes"].(float64) <= 0 {
				t.Fatalf("log line %v", l)
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Fatalf("no duration in %v", l)
			}
		case generated:
			health = true
		}
	}
	if !found || !health {
		t.Fatalf("request lines missing (found %v, health %v):\n%s", found, health, e.logs.String())
	}
	logs := e.logs.String()
	for _, secret := range []string{a.token, a.password, "hush", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q", secret)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/healthz", "/readyz", "/api/healthz", "/api/readyz"} {
		r := e.do("GET", p, "", nil)
		if r.status != 200 || string(r.body) != `{"status":"ok"}` {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/api/healthz", "/api/readyz"} {
		if r := e.do("HEAD", p, "", nil); r.status != 200 || len(r.body) != 0 {
			t.Fatalf("HEAD %s: %d %q", p, r.status, r.body)
		}
	}
	e.health.SetDraining()
	if r := e.do("HEAD", "/readyz", "", nil); r.status != 503 {
		t.Fatalf("HEAD /readyz while draining: %d", r.status)
	}
	expect(t, "readyz while draining", e.do("GET", "/readyz", "", nil), 503, "unavailable")
	expect(t, "healthz while draining", e.do("GET", "/healthz", "", nil), 200, "")

	e2 := newEnv(t, envOptions{})
	if err := e2.store.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(t, "readyz with the database closed", e2.do("GET", "/api/readyz", "", nil), 503, "unavailable")
}

func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	open := newEnv(t, envOptions{})
	open.do("GET", "/healthz", "", nil)
	r := open.do("GET", "/metrics", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `chatd_http_requests_total{code="200",method="GET",route="/healthz"}`) {
		t.Fatalf("metrics from an allowed address: %d\n%s", r.status, r.body)
	}

	closed := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Metrics.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		o.Metrics.Token = "scrape-token"
	}})
	expect(t, "metrics from elsewhere", closed.do("GET", "/metrics", "", nil), 403, "forbidden")
	expect(t, "metrics with a wrong token", closed.do("GET", "/metrics", "nope", nil), 403, "forbidden")
	expect(t, "spoofed forwarded address", closed.do("GET", "/metrics", "", nil, "X-Forwarded-For", "10.1.2.3"), 403, "forbidden")
	if r := closed.do("GET", "/metrics", "scrape-token", nil); r.status != 200 {
		t.Fatalf("metrics with the token: %d", r.status)
	}
}

// TestTrustedProxies: forwarded headers count only from trusted proxies,
// so a client cannot dodge the per-IP login limit by inventing addresses.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	limits := auth.AccountOptions{MaxFailuresPerIP: 2, MaxFailuresPerAccount: 100}
	fail := func(e *env, xff string) int {
		return e.do("POST", "/api/auth/login", "", map[string]string{"email": "x@example.com", "password": "wrong pass"}, "X-Forwarded-For", xff).status
	}

	direct := newEnv(t, envOptions{accounts: limits})
	fail(direct, "1.1.1.1")
	fail(direct, "2.2.2.2")
	if got := fail(direct, "3.3.3.3"); got != 429 {
		t.Fatalf("untrusted X-Forwarded-For escaped the IP limit: %d", got)
	}

	proxied := newEnv(t, envOptions{accounts: limits, router: func(o *transport.RouterOptions) {
		o.TrustedProxies = []string{"127.0.0.1"}
	}})
	fail(proxied, "1.1.1.1")
	fail(proxied, "1.1.1.1")
	if got := fail(proxied, "1.1.1.1"); got != 429 {
		t.Fatalf("the forwarded client was not limited: %d", got)
	}
	if got := fail(proxied, "2.2.2.2"); got != 401 {
		t.Fatalf("another forwarded client was limited too: %d", got)
	}
}

// TestUntrustedProxyWarned: requests forwarded by a loopback proxy that
// CHATD_TRUSTED_PROXIES does not name are logged once as a warning (behind
// it every client shares the proxy's address in the per-address limits,
// silently before); a listed proxy, or a request carrying no forwarding
// header, is not.
func TestUntrustedProxyWarned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []string
		headers []string
		want    int
	}{
		{"X-Forwarded-For from an unlisted proxy", nil, []string{"X-Forwarded-For", "203.0.113.9"}, 1},
		{"X-Real-IP from an unlisted proxy", nil, []string{"X-Real-IP", "203.0.113.9"}, 1},
		{"a proxy listed elsewhere", []string{"10.0.0.1"}, []string{"X-Forwarded-For", "203.0.113.9"}, 1},
		{"the listed proxy", []string{"127.0.0.1"}, []string{"X-Forwarded-For", "203.0.113.9"}, 0},
		{"the listed proxy forwarding a client on its own host", []string{"127.0.0.1"}, []string{"X-Forwarded-For", "127.0.0.1"}, 0},
		{"the listed proxy forwarding an unreadable address", []string{"127.0.0.0/8"}, []string{"X-Forwarded-For", "not an address"}, 0},
		{"no forwarding header", nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) { o.TrustedProxies = tc.trusted }})
			for range 3 {
				expect(t, "healthz", e.do("GET", "/healthz", "", nil, tc.headers...), http.StatusOK, "")
			}
			warned := 0
			for _, l := range e.logs.lines(t) {
				if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "CHATD_TRUSTED_PROXIES") {
					warned++
					if l["proxy"] != "127.0.0.1" {
						t.Errorf("the warning names proxy %v, want 127.0.0.1", l["proxy"])
					}
				}
			}
			if warned != tc.want {
				t.Fatalf("%d warnings about an untrusted proxy, want %d; logs:\n%s", warned, tc.want, e.logs)
			}
		})
	}
}

// TestRequestLogRouteNames: what the web client serves (assets, fonts,
// pages) is logged as route "static", other unmatched requests as
// "unmatched", matched ones by their pattern.
func TestRequestLogRouteNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Static = fstest.MapFS{
			"index.html":                          {Data: []byte("<html>app</html>")},
			"assets/KaTeX_Main-Regular-abc.woff2": {Data: []byte("font")},
		}
	}})
	want := map[string]string{
		"/assets/KaTeX_Main-Regular-abc.woff2": transport.RouteStatic,
		"/c/0123456789abcdef01234567":          transport.RouteStatic,
		"/":                                    transport.RouteStatic,
		"/assets/missing.js":                   transport.RouteStatic,
		"/api/nope":                            transport.RouteUnmatched,
		"/api/auth/me":                         "/api/auth/me",
	}
	for path := range want {
		e.do("GET", path, "", nil)
	}
	got := map[string]string{}
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "http request" {
			got[l["path"].(string)] = l["route"].(string)
		}
	}
	for path, route := range want {
		if got[path] != route {
			t.Errorf("GET %s logged as route %q, want %q", path, got[path], route)
		}
	}
}

// TestProbeRequestsLoggedAtDebug: the successful answers of the routes
// load balancers, monitors and Prometheus poll every few seconds are
// logged at debug, so at the default level they do not fill the log; a
// failed probe keeps its level, and every probe is still counted in
// chatd_http_requests_total. Before, each poll was an info line.
func TestProbeRequestsLoggedAtDebug(t *testing.T) {
	t.Parallel()
	debug := &syncBuffer{}
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
			if level == slog.LevelDebug {
				o.Logger = slog.New(slog.NewJSONHandler(debug, &slog.HandlerOptions{Level: level}))
			}
		}})
		logs := e.logs
		if level == slog.LevelDebug {
			logs = debug
		}
		for _, p := range []string{"/healthz", "/readyz", "/api/healthz", "/api/readyz", "/metrics"} {
			if r := e.do("GET", p, "", nil); r.status != 200 {
				t.Fatalf("GET %s: %d", p, r.status)
			}
		}
		e.do("HEAD", "/readyz", "", nil)
		logged := map[string]string{}
		for _, l := range logs.lines(t) {
			if l["msg"] == "http request" {
				logged[l["method"].(string)+" "+l["path"].(string)] = l["level"].(string)
			}
		}
		want := map[slog.Level]string{slog.LevelInfo: "", slog.LevelDebug: "DEBUG"}[level]
		for _, key := range []string{"GET /healthz", "GET /readyz", "GET /api/healthz", "GET /api/readyz", "GET /metrics", "HEAD /readyz"} {
			if logged[key] != want {
				t.Errorf("with the log at %s, %s logged at %q, want %q", level, key, logged[key], want)
			}
		}
		if level == slog.LevelInfo {
			r := e.do("GET", "/metrics", "", nil)
			if !strings.Contains(string(r.body), `chatd_http_requests_total{code="200",method="GET",route="/readyz"} 1`) {
				t.Errorf("the probes are not counted:\n%s", r.body)
			}
			e.health.SetDraining()
			e.do("GET", "/readyz", "", nil)
			var failed bool
			for _, l := range e.logs.lines(t) {
				failed = failed || l["msg"] == "http request" && l["path"] == "/readyz" && l["level"] == "WARN"
			}
			if !failed {
				t.Errorf("a failed probe was not logged at warn:\n%s", e.logs.String())
			}
		}
	}
}

// TestMetricsMethodLabels: requests with made-up methods (any token is a
// valid HTTP method) are counted under method "other", so an anonymous
// client cannot grow /metrics and the server's memory by one series per
// method it invents. Before, each new method made new series.
func TestMetricsMethodLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for i := range 5 {
		for _, path := range []string{"/healthz", "/api/nope", "/"} {
			e.do(fmt.Sprintf("INVENTED%d", i), path, "", nil)
		}
	}
	e.do("GET", "/healthz", "", nil)
	r := e.do("GET", "/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	known := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
		"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`chatd_http_request[a-z_]*\{[^}]*method="([^"]*)"`).FindAllStringSubmatch(string(r.body), -1) {
		seen[m[1]] = true
		if !known[m[1]] {
			t.Errorf("metrics labelled with method %q", m[1])
		}
	}
	if !seen["other"] || !seen["GET"] {
		t.Fatalf("methods seen %v, want GET and other", seen)
	}
}

// TestAbortedResponseLogged: a response a handler aborts after its first
// bytes (panic(http.ErrAbortHandler), as an export that fails midway
// does, so the client sees the download fail) still gets its request log
// line, with the handler's error, and is counted in the metrics. Before,
// the line and the count were skipped, so an operator never saw it.
func TestAbortedResponseLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			r.API.GET("/abort", func(c *gin.Context) {
				c.Status(200)
				_, _ = c.Writer.WriteString(strings.Repeat("x", 64<<10))
				c.Writer.Flush()
				_ = c.Error(fmt.Errorf("export cut short: disk I/O error"))
				panic(http.ErrAbortHandler)
			})
		}
	}})
	res, err := e.srv.Client().Get(e.srv.URL + "/api/abort")
	if err != nil {
		t.Fatal(err)
	}
	// The server closes the connection only after the handler's chain has
	// unwound: once the read fails, the log line is written.
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Fatal("the aborted response ended as a whole one")
	}
	res.Body.Close()
	var logged bool
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "http request" && l["route"] == "/api/abort" {
			logged = true
			if l["err"] != "export cut short: disk I/O error" {
				t.Fatalf("log line %v: want the handler's error", l)
			}
		}
	}
	if !logged {
		t.Fatalf("no request line for the aborted response:\n%s", e.logs.String())
	}
	if r := e.do("GET", "/metrics", "", nil); !strings.Contains(string(r.body), `route="/api/abort"`) {
		t.Fatalf("the aborted response is not counted:\n%s", r.body)
	}
}

// TestPanicAfterFirstBytesAborts: a handler that panics after its answer
// began is logged, and its response is aborted, so the client sees it
// fail instead of a shorter answer ending as if it were whole. Before,
// recovery ended the chunked body cleanly.
func TestPanicAfterFirstBytesAborts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			r.API.GET("/half", func(c *gin.Context) {
				c.Status(200)
				_, _ = c.Writer.WriteString(strings.Repeat("x", 64<<10))
				c.Writer.Flush()
				panic("half way")
			})
		}
	}})
	res, err := e.srv.Client().Get(e.srv.URL + "/api/half")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Fatalf("a response cut by a panic ended as a whole one (%d bytes)", len(body))
	}
	if !strings.Contains(e.logs.String(), "half way") {
		t.Fatalf("the panic was not logged:\n%s", e.logs.String())
	}
	// The server still answers.
	expect(t, "after the panic", e.do("GET", "/healthz", "", nil), 200, "")
}

// TestUnnormalisedAPIPaths: a path under /api, /ws or /metrics once its
// empty and dot segments are removed (a base URL ending in a slash makes
// //api/...) is answered with the JSON 404, never the web client's page
// with a 200.
func TestUnnormalisedAPIPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Static = fstest.MapFS{"index.html": {Data: []byte("<html>app</html>")}}
	}})
	a := e.register("Paths")
	for _, p := range []string{"//api/conversations", "//api", "/x/../api/conversations", "/./api/models",
		"/api/./nope", "//ws", "/a/../ws", "//metrics", "/./metrics"} {
		r := e.do("GET", p, a.token, nil)
		expect(t, "GET "+p, r, 404, "not_found")
	}
	// The web client's own paths still get the page.
	if r := e.do("GET", "//settings", "", nil); r.status != 200 || string(r.body) != "<html>app</html>" {
		t.Fatalf("GET //settings: %d %q", r.status, r.body)
	}
}

// TestMetricsInFlight: chatd_http_requests_in_flight counts the requests
// being answered by route, as the open SSE streams are, and comes back
// down when each ends, a panicking one included. Before, nothing counted
// the open event streams.
func TestMetricsInFlight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			r.API.GET("/hold", func(c *gin.Context) {
				entered <- struct{}{}
				<-release
				c.String(200, "held")
			})
			r.API.GET("/boom", func(c *gin.Context) { panic("kaboom") })
		}
	}})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before the server's Close, which waits for the held requests
	const holding = `chatd_http_requests_in_flight{method="GET",route="/api/hold"} `
	done := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(e.srv.URL + "/api/hold")
			if err == nil {
				err = resp.Body.Close()
			}
			done <- err
		}()
		<-entered
	}
	expect(t, "panic", e.do("GET", "/api/boom", "", nil), 500, "internal")
	if m := string(e.do("GET", "/metrics", "", nil).body); !strings.Contains(m, holding+"2\n") ||
		!strings.Contains(m, `chatd_http_requests_in_flight{method="GET",route="/api/boom"} 0`) {
		t.Fatalf("two requests held, one panicked:\n%s", m)
	}
	free()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if m := string(e.do("GET", "/metrics", "", nil).body); !strings.Contains(m, holding+"0\n") {
		t.Fatalf("the held requests ended:\n%s", m)
	}
}
