// Package frontend serves the web client (the React app built into dist/ by
// Vite) with the rules of a single-page app:
//
//   - files under /assets/ carry a content hash in their names and are cached
//     for a year ("public, max-age=31536000, immutable");
//   - index.html is always revalidated ("no-cache") and is the answer for "/"
//     and for any deep link without a file extension (for example /c/<id>);
//   - a missing file with an extension is a 404, never index.html;
//   - a path with a segment starting with a dot (.env, .git/config) is a
//     404: a directory given as CHATD_STATIC_DIR may hold such files;
//   - every HTML answer, not only index.html, carries the security headers
//     of nginx.conf (Content-Security-Policy, X-Frame-Options,
//     Referrer-Policy, Cross-Origin-Opener-Policy, Permissions-Policy; see
//     headers.go for what only the proxy sends);
//   - paths under /api and /ws are never claimed: they belong to the router,
//     which answers its own JSON 404 (see Reserved and Options.NotFound).
//
// The built files are embedded only when the binary is built with
// `-tags embedui` after `npm run build`; otherwise Assets returns a small
// placeholder page, so `go build` and `go test ./...` work without Node.js.
package frontend

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// Cache-Control values.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// Assets returns the built web client and true, or a placeholder page and
// false when the binary was built without the embedui tag.
func Assets() (fs.FS, bool) { return assets() }

// Dir returns the web client built into dir (for example CHATD_STATIC_DIR),
// or an error when dir holds no index.html.
func Dir(dir string) (fs.FS, error) {
	fsys := os.DirFS(dir)
	if _, err := fs.Stat(fsys, "index.html"); err != nil {
		return nil, fmt.Errorf("static dir %s: %w", dir, err)
	}
	return fsys, nil
}

// Reserved reports whether a URL path belongs to the API (/api, /api/...) or
// the live channel (/ws, /ws/...): the handler never answers those with the
// single-page app.
func Reserved(p string) bool {
	for _, prefix := range []string{"/api", "/ws"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// Options configure a Handler.
type Options struct {
	// NotFound answers reserved paths (/api, /ws) that reach the handler;
	// it defaults to a JSON 404 in the API's error format.
	NotFound http.Handler
}

// Handler serves the web client of Assets with the single-page-app rules.
func Handler() http.Handler {
	fsys, _ := Assets()
	return New(fsys, Options{})
}

// New returns a handler serving fsys (which must hold index.html at its root)
// with the single-page-app rules of the package doc.
func New(fsys fs.FS, opts Options) http.Handler {
	if opts.NotFound == nil {
		opts.NotFound = http.HandlerFunc(jsonNotFound)
	}
	return &handler{fsys: fsys, notFound: opts.NotFound}
}

type handler struct {
	fsys     fs.FS
	notFound http.Handler
	etags    sync.Map // file name -> etagEntry
}

// etagEntry is a file's ETag with the size and modification time of the
// version it was computed from.
type etagEntry struct {
	size    int64
	modTime time.Time
	tag     string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if Reserved(r.URL.Path) {
		h.notFound.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		refuse(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if hidden(name) {
		refuse(w, "404 page not found", http.StatusNotFound)
		return
	}
	if name == "" || name == "index.html" {
		h.serveIndex(w, r)
		return
	}
	if h.serveFile(w, r, name) {
		return
	}
	if name == "assets" || strings.HasPrefix(name, "assets/") || strings.Contains(path.Base(name), ".") {
		refuse(w, "404 page not found", http.StatusNotFound)
		return
	}
	h.serveIndex(w, r)
}

// refuse answers code with msg, marked not to be stored: a cache (a CDN,
// a shared proxy) keeps a 404 by default, and would go on refusing an
// asset that a rolling deploy's newer instance serves a moment later.
func refuse(w http.ResponseWriter, msg string, code int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}

// serveFile serves a regular file; it reports false when there is none.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	f, err := h.fsys.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		return false
	}
	cache := cacheRevalidate
	if strings.HasPrefix(name, "assets/") {
		cache = cacheImmutable
	}
	h.send(w, r, name, f, info, cache)
	return true
}

func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	f, err := h.fsys.Open("index.html")
	if err != nil {
		refuse(w, "web client not available", http.StatusNotFound)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.Error(w, "web client not available", http.StatusInternalServerError)
		return
	}
	h.send(w, r, "index.html", f, info, cacheRevalidate)
}

// send writes a file with its caching headers; Range and conditional
// requests (If-None-Match on a content hash) are handled by ServeContent.
func (h *handler) send(w http.ResponseWriter, r *http.Request, name string, f fs.File, info fs.FileInfo, cache string) {
	hd := w.Header()
	hd.Set("Cache-Control", cache)
	hd.Set("X-Content-Type-Options", "nosniff")
	if ext := strings.ToLower(path.Ext(name)); ext == ".html" || ext == ".htm" {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		setPageHeaders(hd)
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		rs = strings.NewReader(string(data))
	}
	if tag, err := h.etag(name, info, rs); err == nil {
		hd.Set("ETag", tag)
	}
	modTime := info.ModTime()
	if modTime.Before(time.Unix(1, 0)) {
		modTime = time.Time{} // embedded files have no time: rely on the ETag
	}
	http.ServeContent(w, r, name, modTime, rs)
}

// hidden reports whether a cleaned path has a segment starting with a dot.
func hidden(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

// etag returns a strong ETag from the file's content, computed once per
// version of the file: a name whose size or modification time changed (a
// new index.html installed into CHATD_STATIC_DIR) is hashed again, so the
// browsers revalidating it get the new page, not a 304. Embedded files
// never change: each is hashed once.
func (h *handler) etag(name string, info fs.FileInfo, rs io.ReadSeeker) (string, error) {
	if v, ok := h.etags.Load(name); ok {
		if e := v.(etagEntry); e.size == info.Size() && e.modTime.Equal(info.ModTime()) {
			return e.tag, nil
		}
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, rs); err != nil {
		return "", err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return "", errors.Join(err, errors.New("rewind"))
	}
	tag := `"` + hex.EncodeToString(sum.Sum(nil)[:12]) + `"`
	h.etags.Store(name, etagEntry{size: info.Size(), modTime: info.ModTime(), tag: tag})
	return tag, nil
}

func jsonNotFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"not found"}}`)
}
