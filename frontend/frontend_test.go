package frontend

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const testIndex = `<!doctype html><html><body><div id="root"></div><script type="module" src="/assets/index-abc123.js"></script></body></html>`

func testFS() fstest.MapFS {
	return fstest.MapFS{
		"index.html":              {Data: []byte(testIndex)},
		"assets/index-abc123.js":  {Data: []byte("console.log(1)")},
		"assets/index-def456.css": {Data: []byte("body{}")},
		"robots.txt":              {Data: []byte("User-agent: *")},
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testFS(), Options{}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		bodyHas     string
		cache       string
		contentType string
	}{
		{"root is index", "GET", "/", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"index by name", "GET", "/index.html", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"deep link gets index", "GET", "/c/0123456789abcdef01234567", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"login route gets index", "GET", "/login", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"hashed asset is immutable", "GET", "/assets/index-abc123.js", 200, "console.log(1)", "public, max-age=31536000, immutable", "text/javascript; charset=utf-8"},
		{"hashed css", "GET", "/assets/index-def456.css", 200, "body{}", "public, max-age=31536000, immutable", "text/css; charset=utf-8"},
		{"other root file revalidates", "GET", "/robots.txt", 200, "User-agent", "no-cache", "text/plain; charset=utf-8"},
		{"missing asset is 404, not stored", "GET", "/assets/index-old999.js", 404, "", "no-store", ""},
		{"missing file with extension is 404", "GET", "/logo.png", 404, "", "no-store", ""},
		{"api path is not claimed", "GET", "/api/nothing", 404, `"not_found"`, "", "application/json; charset=utf-8"},
		{"api root is not claimed", "GET", "/api", 404, `"not_found"`, "", "application/json; charset=utf-8"},
		{"ws is not claimed", "GET", "/ws", 404, `"not_found"`, "", "application/json; charset=utf-8"},
		{"ws subpath is not claimed", "GET", "/ws/x", 404, `"not_found"`, "", "application/json; charset=utf-8"},
		{"post to api is not claimed", "POST", "/api/conversations", 404, `"not_found"`, "", "application/json; charset=utf-8"},
		{"apix is a deep link", "GET", "/apix", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"wsx is a deep link", "GET", "/wsx", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"traversal stays inside", "GET", "/assets/../../../etc/passwd", 200, `<div id="root">`, "no-cache", "text/html; charset=utf-8"},
		{"directory is not listed", "GET", "/assets/", 404, "", "no-store", ""},
		{"post to the app is refused", "POST", "/", 405, "", "no-store", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body := readAll(t, res)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, tc.bodyHas) {
				t.Errorf("body %q does not contain %q", body, tc.bodyHas)
			}
			if tc.cache != "" && res.Header.Get("Cache-Control") != tc.cache {
				t.Errorf("Cache-Control %q, want %q", res.Header.Get("Cache-Control"), tc.cache)
			}
			if tc.contentType != "" && res.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.status == 200 && strings.Contains(body, `id="root"`) && res.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("index.html without a Content-Security-Policy")
			}
		})
	}
}

func TestConditionalAndHead(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testFS(), Options{}))
	t.Cleanup(srv.Close)

	res, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	tag := res.Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag on index.html")
	}

	req, _ := http.NewRequest("GET", srv.URL+"/c/0123456789abcdef01234567", nil)
	req.Header.Set("If-None-Match", tag)
	res, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}

	req, _ = http.NewRequest("HEAD", srv.URL+"/assets/index-abc123.js", nil)
	res, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, res); res.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: status %d body %q", res.StatusCode, body)
	}
}

func TestCustomNotFound(t *testing.T) {
	t.Parallel()
	called := false
	h := New(testFS(), Options{NotFound: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		called = true
		w.WriteHeader(http.StatusTeapot)
	})})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v2/x", nil))
	if !called || rec.Code != http.StatusTeapot {
		t.Fatalf("custom NotFound not used: called=%v code=%d", called, rec.Code)
	}
}

func TestReserved(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"/api": true, "/api/": true, "/api/auth/login": true, "/ws": true, "/ws/": true,
		"/": false, "/apis": false, "/wss": false, "/c/api": false, "/assets/ws.js": false,
	} {
		if got := Reserved(path); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestAssets checks what Assets returns: without the embedui tag (the usual
// `go test ./...`) a page that explains how to build the client, with it the
// Vite build.
func TestAssets(t *testing.T) {
	t.Parallel()
	fsys, built := Assets()
	data, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/c/0123456789abcdef01234567", nil))
	if rec.Code != 200 || rec.Body.String() != string(data) {
		t.Errorf("deep link: %d %q", rec.Code, rec.Body.String())
	}
	if built {
		if !strings.Contains(string(data), `id="root"`) {
			t.Errorf("embedded index.html is not the app: %q", data)
		}
		entries, err := fs.ReadDir(fsys, "assets")
		if err != nil || len(entries) == 0 {
			t.Errorf("embedded build has no assets: %v", err)
		}
		return
	}
	if !strings.Contains(string(data), "built without the web client") || !strings.Contains(string(data), "CHATD_STATIC_DIR") {
		t.Errorf("unexpected placeholder: %q", data)
	}
}

func TestDir(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	if _, err := Dir(empty); err == nil {
		t.Error("Dir of an empty directory: want an error")
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "index.html"), []byte(testIndex), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := Dir(full)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	New(fsys, Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/c/abc", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="root"`) {
		t.Errorf("Dir-backed handler: %d %q", rec.Code, rec.Body.String())
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestStaticDirDotfilesAndPages serves a directory as CHATD_STATIC_DIR
// does: dotfiles and dot-directories are 404, and every HTML page carries
// the same security headers as index.html.
func TestStaticDirDotfilesAndPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":        testIndex,
		".env":              "SECRET=1",
		".git/config":       "[core]",
		"assets/.hidden.js": "x",
		"other.html":        "<p>other</p>",
		"docs/page.htm":     "<p>page</p>",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(fsys, Options{}))
	t.Cleanup(srv.Close)
	tests := []struct {
		path    string
		status  int
		headers bool
	}{
		{"/.env", 404, false},
		{"/.git/config", 404, false},
		{"/assets/.hidden.js", 404, false},
		{"/x/../.env", 404, false},
		{"/%2eenv", 404, false},
		{"/", 200, true},
		{"/other.html", 200, true},
		{"/docs/page.htm", 200, true},
		{"/c/abc", 200, true},
	}
	for _, tc := range tests {
		for _, method := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, res)
			if res.StatusCode != tc.status {
				t.Errorf("%s %s: status %d, want %d (body %q)", method, tc.path, res.StatusCode, tc.status, body)
			}
			if strings.Contains(body, "SECRET") || strings.Contains(body, "[core]") {
				t.Errorf("%s %s served a dotfile: %q", method, tc.path, body)
			}
			if !tc.headers {
				continue
			}
			for _, h := range pageHeaders {
				if got := res.Header.Get(h.name); got != h.value {
					t.Errorf("%s %s: HTML answer with %s %q, want %q", method, tc.path, h.name, got, h.value)
				}
			}
		}
	}
}

// TestConnectSources pins the CSP's connect-src to the page's own origin
// ('self', which matches same-origin ws: and wss: under CSP Level 3): no
// scheme-wide ws: or wss: source that would allow a socket to any host, and
// no host name, so the policy holds on any host and port.
func TestConnectSources(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testFS(), Options{}))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := cspDirective(res.Header.Get("Content-Security-Policy"), "connect-src"), "connect-src 'self'"; got != want {
		t.Errorf("CSP connect sources %q, want %q", got, want)
	}
}

// cspDirective returns the directive of policy named name, or "".
func cspDirective(policy, name string) string {
	for _, d := range strings.Split(policy, ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, name+" ") {
			return d
		}
	}
	return ""
}

// TestImageSources pins the CSP's img-src: this origin, data: (the favicon)
// and https: for markdown images the reader chose to load (the client
// creates such an <img> only after a click); no blob: and no plain http:.
func TestImageSources(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testFS(), Options{}))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var img string
	for _, d := range strings.Split(res.Header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "img-src ") {
			img = d
		}
	}
	if want := "img-src 'self' https: data:"; img != want {
		t.Errorf("CSP image sources %q, want %q", img, want)
	}
}

// TestStaticDirNewIndex: a new index.html installed into a served
// directory (a front-end deploy into CHATD_STATIC_DIR) gets a new ETag,
// so a browser revalidating with the old one gets the new page (200), not
// a 304 until chatd restarts. Either a new size or a new modification
// time is noticed; the new tag then answers 304.
func TestStaticDirNewIndex(t *testing.T) {
	t.Parallel()
	installed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		page    string    // the new index.html
		modTime time.Time // its modification time
	}{
		{"same size, later time", strings.Replace(testIndex, "abc123", "fed987", 1), installed.Add(time.Hour)},
		{"other size, same time", strings.Replace(testIndex, "abc123", "fed9876", 1), installed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			index := filepath.Join(dir, "index.html")
			install := func(page string, at time.Time) {
				t.Helper()
				if err := os.WriteFile(index, []byte(page), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(index, at, at); err != nil {
					t.Fatal(err)
				}
			}
			install(testIndex, installed)
			srv := httptest.NewServer(New(os.DirFS(dir), Options{}))
			t.Cleanup(srv.Close)
			get := func(tag string) (status int, body, etag string) {
				t.Helper()
				req, _ := http.NewRequest("GET", srv.URL+"/", nil)
				if tag != "" {
					req.Header.Set("If-None-Match", tag)
				}
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return res.StatusCode, readAll(t, res), res.Header.Get("ETag")
			}
			_, _, oldTag := get("")
			if status, _, _ := get(oldTag); oldTag == "" || status != http.StatusNotModified {
				t.Fatalf("before the deploy: ETag %q answers %d; want 304", oldTag, status)
			}
			install(c.page, c.modTime)
			status, body, newTag := get(oldTag)
			if status != http.StatusOK || body != c.page {
				t.Errorf("the old ETag after the deploy: %d %q; want 200 and the new page", status, body)
			}
			if newTag == "" || newTag == oldTag {
				t.Errorf("ETag after the deploy %q; want a new one (was %q)", newTag, oldTag)
			}
			if status, _, _ := get(newTag); status != http.StatusNotModified {
				t.Errorf("the new ETag answers %d; want 304", status)
			}
		})
	}
}
