package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wsReadTimeout is the nginx proxy_read_timeout the test renders for /ws,
// and wsPing the server's ping interval: pings must keep an idle socket
// open well past the timeout.
// The timeout is 5 pings, so that a stall of a loaded machine (a second
// or two) between pings does not reach it, as with 3 it could.
const (
	wsReadTimeout = 5 // seconds
	wsPing        = time.Second
	wsIdle        = 12 * time.Second
)

// TestDeployment runs nginx (the repository's nginx.conf), chatd and the fake
// OpenAI server, and checks the site through nginx over TLS.
func TestDeployment(t *testing.T) {
	need(t, "nginx", "apt-get update && apt-get install -y nginx")
	static, realFrontend := frontendRoot(t)
	openai := fakeAI(t)
	srv := startChatd(t, chatdOptions{OpenAIBaseURL: openai, PingInterval: wsPing})
	site := startNginx(t, nginxOptions{Root: static, Upstream: srv.Addr, WSReadTimeout: wsReadTimeout})
	c := site.Client(true)

	var acct account
	t.Run("http redirects with 307 and a POST stays a POST", func(t *testing.T) {
		acct = checkRedirect(t, site)
	})
	if acct.Token == "" {
		acct = register(t, c, site.Origin())
	}
	t.Run("tls versions, http2 and unknown names", func(t *testing.T) { checkTLS(t, site) })
	t.Run("static files, cache headers and spa fallback", func(t *testing.T) { checkStatic(t, site) })
	t.Run("security headers", func(t *testing.T) { checkSecurityHeaders(t, site, acct.Token) })
	t.Run("health and metrics", func(t *testing.T) { checkHealth(t, site, srv) })
	t.Run("rest api", func(t *testing.T) { checkAPI(t, site, acct) })
	t.Run("search terms stay out of the access log", func(t *testing.T) { checkSearchNotLogged(t, site, acct) })
	t.Run("client address forwarded by nginx only", func(t *testing.T) { checkForwarded(t, site, srv) })
	t.Run("websocket generation over wss", func(t *testing.T) { checkWebSocket(t, site, acct) })
	t.Run("sse generation arrives unbuffered", func(t *testing.T) { checkSSE(t, site, acct) })
	t.Run("long-lived sse event stream is not buffered", func(t *testing.T) { checkEventStream(t, site, acct) })
	t.Run("deploy/smoke.sh passes against the site", func(t *testing.T) { checkSmokeScript(t, site) })
	t.Run("deploy/nginx-local.sh serves the app and the api", func(t *testing.T) { checkNginxLocal(t, srv, static) })
	t.Run("foreign origin refused, own origin accepted", func(t *testing.T) { checkOrigin(t, site, acct) })

	// The slow checks run side by side.
	t.Run("slow", func(t *testing.T) {
		t.Run("idle websocket outlives proxy_read_timeout", func(t *testing.T) {
			t.Parallel()
			checkIdleWebSocket(t, site, acct)
		})
		t.Run("without server pings nginx does close an idle websocket", func(t *testing.T) {
			t.Parallel()
			checkIdleControl(t, static, openai)
		})
		t.Run("browser loads the app under the csp", func(t *testing.T) {
			t.Parallel()
			if !realFrontend {
				t.Fatal("the front end is not built (frontend/dist) and cannot be built here (npm ci in frontend/ first): the browser check needs the real app")
			}
			// A second site runs the offline demo model (no model API
			// configured), which quotes the prompt: math comes back rendered.
			demo := startChatd(t, chatdOptions{Extra: []string{"CHATD_DEMO_DELAY=1ms"}})
			demoSite := startNginx(t, nginxOptions{Root: static, Upstream: demo.Addr})
			checkBrowser(t, site, demoSite)
		})
	})
}

// noFollow is a client that returns redirects instead of following them.
func noFollow(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

func checkRedirect(t *testing.T, site *nginxSite) account {
	httpBase := fmt.Sprintf("http://%s:%d", testDomain, site.HTTPPort)
	c := noFollow(site.Client(true))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		req, _ := http.NewRequest(method, httpBase+"/c/abc?x=1&y=%20", strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := site.URL("/c/abc?x=1&y=%20")
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
			t.Errorf("%s over http: %d Location %q, want 307 %q", method, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	// Following the redirect keeps the method and the body: registering
	// over plain HTTP ends at the API over HTTPS, which creates the account.
	email := fmt.Sprintf("redirect-%d@example.com", time.Now().UnixNano())
	body, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery", "name": "Redirected"})
	req, _ := http.NewRequest(http.MethodPost, httpBase+"/api/auth/register", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var hops []string
	follow := site.Client(true)
	follow.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		hops = append(hops, fmt.Sprintf("%s %s", r.Method, r.URL))
		return nil
	}
	resp, err := follow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Request.Method != http.MethodPost || resp.Request.URL.Scheme != "https" {
		t.Fatalf("POST http://…/api/auth/register followed: %d, final request %s %s (hops %v); body %s",
			resp.StatusCode, resp.Request.Method, resp.Request.URL, hops, b)
	}
	var a account
	if err := json.Unmarshal(b, &a); err != nil || a.Token == "" || !strings.EqualFold(a.User.Email, email) {
		t.Fatalf("register through the redirect answered %s (%v)", b, err)
	}

	// A Host that is not ours gets no answer at all (return 444).
	raw, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", site.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(raw); len(got) != 0 {
		t.Errorf("a request for another host got an answer: %.100q", got)
	}
	return a
}

func checkTLS(t *testing.T, site *nginxSite) {
	addr := fmt.Sprintf("127.0.0.1:%d", site.HTTPSPort)
	for _, tc := range []struct {
		name string
		ver  uint16
		ok   bool
	}{
		{"TLS 1.3", tls.VersionTLS13, true},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.1", tls.VersionTLS11, false},
		{"TLS 1.0", tls.VersionTLS10, false},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{
			RootCAs: site.Pool, ServerName: testDomain, MinVersion: tls.VersionTLS10, MaxVersion: tc.ver,
		})
		if tc.ok != (err == nil) {
			t.Errorf("%s handshake: error %v, want success %v", tc.name, err, tc.ok)
		}
		if err == nil {
			st := conn.ConnectionState()
			name := tls.CipherSuiteName(st.CipherSuite)
			if st.Version == tls.VersionTLS12 && !strings.HasPrefix(name, "TLS_ECDHE_") {
				t.Errorf("TLS 1.2 negotiated %s, want a forward-secret ECDHE suite", name)
			}
			conn.Close()
		}
	}
	// Only the configured name is served; other SNI names are refused.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "evil.example"}); err == nil {
		conn.Close()
		t.Error("a handshake for another server name succeeded")
	}
	resp, err := site.Client(true).Get(site.URL("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("a browser-like client got %s, want HTTP/2", resp.Proto)
	}
}

var assetRE = regexp.MustCompile(`/assets/[A-Za-z0-9._-]+\.js`)

func get(t *testing.T, c *http.Client, url string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, b
}

func checkStatic(t *testing.T, site *nginxSite) {
	c := site.Client(true)
	resp, index := get(t, c, site.URL("/"), nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index.html Cache-Control %q, want no-cache", cc)
	}
	if !bytes.Contains(index, []byte(`id="root"`)) {
		t.Errorf("GET / is not the app's index.html: %.200s", index)
	}

	asset := assetRE.Find(index)
	if asset == nil {
		t.Fatalf("index.html names no /assets/*.js bundle: %.300s", index)
	}
	resp, js := get(t, c, site.URL(string(asset)), nil)
	if resp.StatusCode != 200 || len(js) == 0 {
		t.Fatalf("GET %s: %d, %d bytes", asset, resp.StatusCode, len(js))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("%s Cache-Control %q, want public, max-age=31536000, immutable", asset, cc)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("%s Content-Type %q", asset, ct)
	}
	// Setting Accept-Encoding by hand keeps Go from decompressing silently.
	resp, _ = get(t, c, site.URL(string(asset)), map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("%s is not served gzip-compressed: Content-Encoding %q, Vary %q", asset,
			resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}

	// Deep links get the app; a missing asset is a 404, not the app.
	resp, deep := get(t, c, site.URL("/c/0123456789abcdef01234567"), nil)
	if resp.StatusCode != 200 || !bytes.Equal(deep, index) || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("deep link /c/<id>: %d, Cache-Control %q, same as index.html %v",
			resp.StatusCode, resp.Header.Get("Cache-Control"), bytes.Equal(deep, index))
	}
	resp, _ = get(t, c, site.URL("/assets/does-not-exist-0000.js"), nil)
	if resp.StatusCode != 404 {
		t.Errorf("missing asset: %d, want 404", resp.StatusCode)
	}
}

// wantHeaders are the security headers every HTTPS answer carries.
var wantHeaders = map[string]string{
	"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	"X-Content-Type-Options":    "nosniff",
	"Referrer-Policy":           "strict-origin-when-cross-origin",
	"X-Frame-Options":           "DENY",
}

func checkSecurityHeaders(t *testing.T, site *nginxSite, token string) {
	c := site.Client(true)
	for _, path := range []string{"/", "/c/0123456789abcdef01234567", "/api/auth/me", "/api/nope", "/assets/does-not-exist-0000.js"} {
		resp, _ := get(t, c, site.URL(path), map[string]string{"Authorization": "Bearer " + token})
		for k, v := range wantHeaders {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s (%d): %s = %q, want exactly %q", path, resp.StatusCode, k, got, v)
			}
		}
		csp := resp.Header.Values("Content-Security-Policy")
		if len(csp) != 1 {
			t.Errorf("%s: %d Content-Security-Policy headers, want 1", path, len(csp))
			continue
		}
		for _, d := range []string{"default-src 'self'", "script-src 'self';", "style-src-elem 'self';", "object-src 'none'",
			"frame-ancestors 'none'", "img-src 'self' https:", "connect-src 'self' wss://" + testDomain + ":"} {
			if !strings.Contains(csp[0], d) {
				t.Errorf("%s: CSP lacks %q: %s", path, d, csp[0])
			}
		}
		if strings.Contains(strings.SplitN(strings.SplitN(csp[0], "script-src", 2)[1], ";", 2)[0], "unsafe") {
			t.Errorf("%s: script-src allows unsafe sources: %s", path, csp[0])
		}
	}
}

// checkHealth checks the probes answer through nginx, and stay out of its
// access log (polled every few seconds, they would fill it), while other
// requests are logged.
func checkHealth(t *testing.T, site *nginxSite, srv *chatdServer) {
	c := site.Client(true)
	probes := []string{"/healthz", "/readyz", "/api/healthz", "/api/readyz"}
	for _, path := range probes {
		resp, b := get(t, c, site.URL(path), nil)
		var body struct{ Status string }
		if resp.StatusCode != 200 || json.Unmarshal(b, &body) != nil || body.Status != "ok" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	// nginx writes a request's log line as the request ends, in order: once
	// a request made after the probes is in the log, theirs would be too.
	marker := fmt.Sprintf("/api/after-the-probes-%d", time.Now().UnixNano())
	get(t, c, site.URL(marker), nil)
	for _, line := range accessLogUpTo(t, site, marker) {
		for _, path := range probes {
			if strings.Contains(line, " "+path+" ") {
				t.Errorf("nginx logged the probe %s: %s", path, line)
			}
		}
	}
	if resp, _ := get(t, c, site.URL("/metrics"), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics through nginx: %d, want 403 (not public)", resp.StatusCode)
	}
	// Scraped from the host, on the server's own address (docs/deploy.md).
	resp, b := get(t, http.DefaultClient, "http://"+srv.Addr+"/metrics", nil)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("chatd_http_requests_total")) {
		t.Errorf("GET %s/metrics from loopback: %d, %.200s", srv.Addr, resp.StatusCode, b)
	}
}

// checkSearchNotLogged checks that nginx logs a search's path but not its
// query string: what users look for stays out of the access log.
func checkSearchNotLogged(t *testing.T, site *nginxSite, a account) {
	c := site.Client(true)
	term := fmt.Sprintf("quokka%d", time.Now().UnixNano())
	apiCall(t, c, http.MethodGet, site.Origin()+"/api/conversations?q="+term, a.Token, nil, nil, http.StatusOK)
	marker := fmt.Sprintf("/api/after-the-search-%d", time.Now().UnixNano())
	get(t, c, site.URL(marker), nil)
	searched := false
	for _, line := range accessLogUpTo(t, site, marker) {
		if strings.Contains(line, term) {
			t.Errorf("nginx logged the search term: %s", line)
		}
		searched = searched || strings.Contains(line, `"GET /api/conversations HTTP/`)
	}
	if !searched {
		t.Error("no line for the search (GET /api/conversations) in the access log")
	}
}

// accessLogUpTo waits for nginx's access log to hold a request for path
// and returns its lines up to that one.
func accessLogUpTo(t *testing.T, site *nginxSite, path string) []string {
	t.Helper()
	file := filepath.Join(site.Prefix, "access.log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			if strings.Contains(line, " "+path+" ") {
				return lines[:i+1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request for %s in %s:\n%s", path, file, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkAPI(t *testing.T, site *nginxSite, a account) {
	c := site.Client(true)
	base := site.Origin()
	var me struct {
		User struct{ ID string } `json:"user"`
	}
	apiCall(t, c, http.MethodGet, base+"/api/auth/me", a.Token, nil, &me, http.StatusOK)
	if me.User.ID != a.User.ID {
		t.Errorf("/api/auth/me is user %q, want %q", me.User.ID, a.User.ID)
	}
	apiCall(t, c, http.MethodGet, base+"/api/auth/me", "", nil, nil, http.StatusUnauthorized)
	id := newConversation(t, c, base, a.Token)
	var list struct {
		Conversations []struct{ ID string } `json:"conversations"`
	}
	apiCall(t, c, http.MethodGet, base+"/api/conversations", a.Token, nil, &list, http.StatusOK)
	if len(list.Conversations) == 0 || list.Conversations[0].ID != id {
		t.Errorf("conversation list %+v does not start with the new conversation %s", list.Conversations, id)
	}
	var models struct {
		Models []struct{ ID string } `json:"models"`
	}
	apiCall(t, c, http.MethodGet, base+"/api/models", a.Token, nil, &models, http.StatusOK)
	if len(models.Models) == 0 {
		t.Error("/api/models lists no model")
	}
	// An unknown API route is the API's JSON 404, not the SPA page.
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	apiCall(t, c, http.MethodGet, base+"/api/no-such-route", a.Token, nil, &e, http.StatusNotFound)
	if e.Error.Code != "not_found" {
		t.Errorf("unknown API route: error code %q, want not_found", e.Error.Code)
	}
}

// generateWS sends one message on w and returns the concatenated deltas and
// the done frame.
func generateWS(ctx context.Context, w *wsConn, convID, content string) (string, frame, error) {
	if err := w.send(ctx, map[string]any{"type": "send", "id": "s1", "conversationId": convID, "content": content}); err != nil {
		return "", frame{}, err
	}
	ack, _, err := w.until(ctx, "ack")
	if err != nil {
		return "", frame{}, err
	}
	var text strings.Builder
	seq := 0
	for {
		f, err := w.next(ctx)
		if err != nil {
			return text.String(), frame{}, fmt.Errorf("after %d bytes: %w", seq, err)
		}
		switch f.Type {
		case "error":
			return "", f, fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		case "delta":
			if f.MessageID != ack.MessageID {
				continue
			}
			if seq+len(f.Text) != f.Seq {
				return "", f, fmt.Errorf("delta seq %d does not follow %d + %d bytes", f.Seq, seq, len(f.Text))
			}
			text.WriteString(f.Text)
			seq = f.Seq
		case "done":
			if f.MessageID == ack.MessageID {
				return text.String(), f, nil
			}
		}
	}
}

// storedAnswer returns the content and status of a stored message.
func storedAnswer(t *testing.T, site *nginxSite, token, convID, msgID string) (string, string) {
	var out struct {
		Messages []struct{ ID, Content, Status string } `json:"messages"`
	}
	apiCall(t, site.Client(true), http.MethodGet, site.URL("/api/conversations/"+convID), token, nil, &out, http.StatusOK)
	for _, m := range out.Messages {
		if m.ID == msgID {
			return m.Content, m.Status
		}
	}
	t.Fatalf("message %s not in conversation %s", msgID, convID)
	return "", ""
}

func checkWebSocket(t *testing.T, site *nginxSite, a account) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	convID := newConversation(t, site.Client(true), site.Origin(), a.Token)
	w, resp, err := dialWS(ctx, site, a.Token, site.Origin())
	if err != nil {
		t.Fatalf("dial wss through nginx: %v (status %v)", err, statusOf(resp))
	}
	defer w.close()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "chat.v1" {
		t.Errorf("negotiated subprotocol %q, want chat.v1", p)
	}
	hello, err := w.next(ctx)
	if err != nil || hello.Type != "hello" || hello.Protocol != "chat.v1" || hello.UserID != a.User.ID {
		t.Fatalf("first frame %+v (%v), want hello for user %s", hello, err, a.User.ID)
	}
	text, done, err := generateWS(ctx, w, convID, "Hello over wss [[fake tokens=12 delay=20ms]]")
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != "complete" || text == "" || done.Seq != len(text) {
		t.Fatalf("done %+v after %d bytes %q", done, len(text), text)
	}
	if content, status := storedAnswer(t, site, a.Token, convID, done.MessageID); content != text || status != "complete" {
		t.Errorf("stored answer %q (%s), streamed %q", content, status, text)
	}
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "no response"
	}
	return resp.StatusCode
}

// The fake model's pacing for the SSE check: the answer takes ~6 s, so
// that a stall of a loaded machine (a second or two) before the first
// delta does not put it past half the answer, as it could at ~2 s.
const (
	sseTokens = 60
	sseDelay  = 100 * time.Millisecond
)

func checkSSE(t *testing.T, site *nginxSite, a account) {
	c := site.Client(true) // HTTP/2 to nginx, as a browser would
	convID := newConversation(t, c, site.Origin(), a.Token)
	body, _ := json.Marshal(map[string]string{
		"content": fmt.Sprintf("Stream over SSE [[fake tokens=%d delay=%s]]", sseTokens, sseDelay),
	})
	req, _ := http.NewRequest(http.MethodPost, site.URL("/api/conversations/"+convID+"/messages"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+a.Token)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE request: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// The server's own Cache-Control, once: nginx adds none to the API.
	if cc := resp.Header.Values("Cache-Control"); len(cc) != 1 || !strings.HasPrefix(cc[0], "no-store") {
		t.Errorf("SSE Cache-Control %q, want the server's single no-store", cc)
	}
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("SSE response is compressed (%s): events would be held back", resp.Header.Get("Content-Encoding"))
	}
	evs, err := readSSE(resp.Body, start)
	if err != nil {
		t.Fatalf("read SSE: %v", err)
	}
	var deltas []sseEvent
	var done *sseEvent
	var text strings.Builder
	for i, e := range evs {
		switch e.Event {
		case "delta":
			var f frame
			if err := json.Unmarshal([]byte(e.Data), &f); err != nil {
				t.Fatalf("delta data %q: %v", e.Data, err)
			}
			text.WriteString(f.Text)
			deltas = append(deltas, e)
		case "done":
			done = &evs[i]
		}
	}
	if done == nil || len(deltas) == 0 {
		t.Fatalf("SSE stream without deltas or done: %+v", evs)
	}
	var d frame
	if err := json.Unmarshal([]byte(done.Data), &d); err != nil || d.Status != "complete" || d.Seq != text.Len() {
		t.Fatalf("done %s (%v) after %d bytes", done.Data, err, text.Len())
	}
	first, total := deltas[0].At, done.At
	t.Logf("SSE: first delta after %v, %d delta events, done after %v", first.Round(time.Millisecond), len(deltas), total.Round(time.Millisecond))
	// Produced over ~(sseTokens-1)*sseDelay; unbuffered, the first delta
	// arrives right away and the deltas spread over the whole answer.
	if minTotal := time.Duration(sseTokens-1) * sseDelay * 3 / 4; total < minTotal {
		t.Fatalf("the answer took %v, less than %v: the fake model was not paced, the check proves nothing", total, minTotal)
	}
	if first > total/2 {
		t.Errorf("first delta arrived after %v of %v: events are buffered", first, total)
	}
	if spread := deltas[len(deltas)-1].At - first; len(deltas) < sseTokens/4 || spread < total/2 {
		t.Errorf("%d delta events spread over %v of %v: events are batched", len(deltas), spread, total)
	}
}

func checkOrigin(t *testing.T, site *nginxSite, a account) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, origin := range []string{"https://evil.example", fmt.Sprintf("http://%s:%d", testDomain, site.HTTPPort)} {
		w, resp, err := dialWS(ctx, site, a.Token, origin)
		if err == nil {
			w.close()
			t.Errorf("Origin %s was accepted", origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: %v (status %v), want 403 before the upgrade", origin, err, statusOf(resp))
		}
	}
	w, resp, err := dialWS(ctx, site, a.Token, site.Origin())
	if err != nil {
		t.Fatalf("own origin %s refused: %v (status %v)", site.Origin(), err, statusOf(resp))
	}
	defer w.close()
	if f, err := w.next(ctx); err != nil || f.Type != "hello" {
		t.Fatalf("own origin: first frame %+v (%v)", f, err)
	}
}

func checkIdleWebSocket(t *testing.T, site *nginxSite, a account) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, resp, err := dialWS(ctx, site, a.Token, site.Origin())
	if err != nil {
		t.Fatalf("dial: %v (status %v)", err, statusOf(resp))
	}
	defer w.close()
	if f, err := w.next(ctx); err != nil || f.Type != "hello" {
		t.Fatalf("first frame %+v (%v)", f, err)
	}
	// Idle: the client sends nothing; only the server's pings (answered by
	// the reader goroutine) cross nginx.
	idle := time.NewTimer(wsIdle)
	defer idle.Stop()
	for waiting := true; waiting; {
		select {
		case <-idle.C:
			waiting = false
		case f, ok := <-w.frames:
			if !ok {
				t.Fatalf("the idle socket was closed (nginx read timeout %ds, server ping %v): %v", wsReadTimeout, wsPing, <-w.errc)
			}
			t.Logf("frame while idle: %+v", f)
		}
	}
	if err := w.send(ctx, map[string]any{"type": "ping", "id": "after-idle"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.until(ctx, "pong"); err != nil {
		t.Fatalf("after %v idle: %v", wsIdle, err)
	}
	convID := newConversation(t, site.Client(true), site.Origin(), a.Token)
	if _, done, err := generateWS(ctx, w, convID, "Still there? [[fake tokens=5]]"); err != nil || done.Status != "complete" {
		t.Fatalf("generation after %v idle: %+v %v", wsIdle, done, err)
	}
}

// checkIdleControl shows the idle check above is meaningful: the same
// nginx configuration in front of a server that pings rarely closes an idle
// WebSocket after proxy_read_timeout.
func checkIdleControl(t *testing.T, static, openai string) {
	srv := startChatd(t, chatdOptions{OpenAIBaseURL: openai, PingInterval: time.Minute})
	site := startNginx(t, nginxOptions{Root: static, Upstream: srv.Addr, WSReadTimeout: wsReadTimeout})
	a := register(t, site.Client(true), site.Origin())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, resp, err := dialWS(ctx, site, a.Token, site.Origin())
	if err != nil {
		t.Fatalf("dial: %v (status %v)", err, statusOf(resp))
	}
	defer w.close()
	if f, err := w.next(ctx); err != nil || f.Type != "hello" {
		t.Fatalf("first frame %+v (%v)", f, err)
	}
	start := time.Now()
	for {
		select {
		case _, ok := <-w.frames:
			if ok {
				continue
			}
			err := <-w.errc
			took := time.Since(start)
			if took < time.Duration(wsReadTimeout)*time.Second*8/10 {
				t.Fatalf("the socket ended after %v, before nginx's %ds read timeout: %v", took, wsReadTimeout, err)
			}
			t.Logf("without pings nginx closed the idle socket after %v (%v)", took.Round(100*time.Millisecond), err)
			return
		case <-time.After(wsIdle + 5*time.Second):
			t.Fatalf("a socket without pings stayed open %v: is proxy_read_timeout %ds rendered into %s?", wsIdle+5*time.Second, wsReadTimeout, site.Conf)
		}
	}
}

// checkForwarded shows the server sees the real client address through
// nginx (CHATD_TRUSTED_PROXIES=127.0.0.1), that nginx replaces an
// X-Forwarded-For the client made up, and that the server ignores that
// header from anyone but the proxy. The client connects from 127.0.0.5 and
// the server's request log says which address it saw.
func checkForwarded(t *testing.T, site *nginxSite, srv *chatdServer) {
	const clientIP = "127.0.0.5"
	local := &net.TCPAddr{IP: net.ParseIP(clientIP)}
	probe := func(c *http.Client, url string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("X-Real-IP", "203.0.113.9")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", url, clientIP, err)
		}
		resp.Body.Close()
	}
	viaNginx := fmt.Sprintf("/api/forwarded-check-nginx-%d", time.Now().UnixNano())
	probe(site.clientFrom(true, local), site.URL(viaNginx))
	direct := fmt.Sprintf("/api/forwarded-check-direct-%d", time.Now().UnixNano())
	d := &net.Dialer{LocalAddr: local}
	probe(&http.Client{Transport: &http.Transport{DialContext: d.DialContext}}, "http://"+srv.Addr+direct)
	for path, want := range map[string]string{viaNginx: clientIP, direct: clientIP} {
		if got := loggedClientIP(t, srv.proc.log, path); got != want {
			t.Errorf("request %s: the server saw client %q, want %q", path, got, want)
		}
	}
}

// loggedClientIP waits for the server's request log record of path and
// returns its client_ip.
func loggedClientIP(t *testing.T, logFile, path string) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, path) {
				continue
			}
			var rec struct {
				Path     string `json:"path"`
				ClientIP string `json:"client_ip"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Path == path {
				return rec.ClientIP
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log record with path %s in %s", path, logFile)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkEventStream opens the long-lived SSE stream of a user's events
// (GET /api/events) through nginx and checks that a small event (a
// conversation created over REST) arrives at once, not when a proxy buffer
// fills or the stream ends.
//
// Over HTTP/2 nginx holds the response headers back until the first body
// byte, and the server writes nothing before the first event or its 15 s
// keep-alive comment, so the client cannot tell when the stream is open:
// conversations are created until one's event arrives, and each event's
// delay is measured from the creation of the conversation it names.
func checkEventStream(t *testing.T, site *nginxSite, a account) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site.URL("/api/events"), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+a.Token)
	start := time.Now()
	events := make(chan sseEvent, 16)
	go func() {
		defer close(events)
		resp, err := site.Client(true).Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			events <- sseEvent{Event: "status", Data: fmt.Sprintf("%d %s", resp.StatusCode, b)}
			return
		}
		events <- sseEvent{Event: "open", At: time.Since(start)}
		streamSSE(resp.Body, start, events)
	}()
	created := map[string]time.Duration{} // conversation id -> when it was created
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	create := func() { created[newConversation(t, site.Client(true), site.Origin(), a.Token)] = time.Since(start) }
	create()
	for {
		select {
		case e, ok := <-events:
			switch {
			case !ok:
				t.Fatal("the event stream ended before any conversation event")
			case e.Event == "status":
				t.Fatalf("GET /api/events: %s", e.Data)
			case e.Event == "open":
				t.Logf("/api/events headers after %v", e.At.Round(time.Millisecond))
			case e.Event == "conversation":
				for id, at := range created {
					if strings.Contains(e.Data, id) {
						// A buffered stream holds the event until a buffer
						// (KiBs: a dozen such events) fills; 3 s leaves a
						// loaded machine's stalls room, where 1 s did not.
						if delay := e.At - at; delay > 3*time.Second {
							t.Fatalf("the conversation event arrived %v after the conversation was created: the stream is buffered", delay)
						} else {
							t.Logf("conversation event %v after the creation", delay.Round(time.Millisecond))
						}
						return
					}
				}
			}
		case <-tick.C:
			if len(created) < 10 {
				create()
			}
		case <-ctx.Done():
			t.Fatalf("no conversation event within %v (%d conversations created)", time.Since(start).Round(time.Millisecond), len(created))
		}
	}
}

// checkSmokeScript runs the operators' post-deploy check against the site.
func checkSmokeScript(t *testing.T, site *nginxSite) {
	need(t, "curl", "apt-get install -y curl")
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "smoke.sh"),
		"--cacert", site.CertFile,
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", testDomain, site.HTTPSPort),
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", testDomain, site.HTTPPort),
		site.Origin(), fmt.Sprintf("http://%s:%d", testDomain, site.HTTPPort))
	if err != nil || !strings.Contains(out, ", 0 failed") {
		t.Fatalf("smoke.sh: %v\n%s", err, out)
	}
	t.Logf("smoke.sh: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
}

// checkNginxLocal starts deploy/nginx-local.sh in front of the server, reads
// the URL and certificate it prints, uses the site, and stops it with
// SIGTERM: nginx must exit and the temporary directory disappear.
func checkNginxLocal(t *testing.T, srv *chatdServer, static string) {
	root := repoRoot(t)
	p := startProc(t, "nginx-local", nil, root, "bash", filepath.Join(root, "deploy", "nginx-local.sh"),
		"--upstream", srv.Addr, "--root", static, "--request-timeout", "2m")
	vars := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for vars["CERT"] == "" {
		if err := p.exited(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx-local.sh printed no CERT line:\n%s", tail(p.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(p.log)
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && (k == "BASE_URL" || k == "HTTP_URL" || k == "CERT") {
				vars[k] = v
			}
		}
	}
	pemBytes, err := os.ReadFile(vars["CERT"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitOK(ctx, c, vars["BASE_URL"]+"/readyz", p); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, c, vars["BASE_URL"]+"/c/0123456789abcdef01234567", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`id="root"`)) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("deep link through nginx-local.sh: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	dir := filepath.Dir(vars["CERT"])
	conf, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readTimeoutAfter(t, string(conf), "location /api/ {"); got != "125s" {
		t.Errorf("nginx-local.sh --request-timeout 2m: /api/ proxy_read_timeout %s, want 125s (2m + 5 s)", got)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("nginx-local.sh did not exit on SIGTERM")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("nginx-local.sh left %s behind (%v)", dir, err)
	}
	if _, err := c.Get(vars["BASE_URL"] + "/healthz"); err == nil {
		t.Error("nginx still answers after nginx-local.sh exited")
	}
}
