package openai

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"chatd/llm"
)

// doer is the HTTP client go-openai calls. For a Stream attempt it records
// the response status and headers (for Retry-After) and watches the body
// for the final "data: [DONE]" (go-openai reports a clean end of the body
// and [DONE] alike as io.EOF).
type doer struct {
	c       *http.Client
	headers map[string]string
	query   map[string]string
}

func (d doer) Do(req *http.Request) (*http.Response, error) {
	if id := llm.RequestID(req.Context()); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	if len(d.query) > 0 {
		q := req.URL.Query()
		for k, v := range d.query {
			q.Set(k, v)
		}
		req.URL.RawQuery = q.Encode()
	}
	st, _ := req.Context().Value(attemptKey{}).(*attempt)
	if st != nil && len(st.sampling) > 0 {
		if err := addMembers(req, st.sampling); err != nil {
			return nil, err
		}
	}
	resp, err := d.c.Do(req)
	if err != nil {
		return nil, err
	}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// A redirect the client did not follow (see RedirectPolicy).
		resp.Body.Close()
		if st, ok := req.Context().Value(attemptKey{}).(*attempt); ok {
			st.status, st.header = resp.StatusCode, resp.Header
		}
		if u, err := resp.Location(); err == nil {
			loc = u.String() // a relative one resolved
		}
		return nil, &redirectError{status: resp.StatusCode, to: loc}
	}
	if resp.StatusCode >= 400 {
		// go-openai reads an error body whole.
		resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxErrorBody), Closer: resp.Body}
	}
	if st, ok := req.Context().Value(attemptKey{}).(*attempt); ok {
		st.status, st.header = resp.StatusCode, resp.Header
		switch {
		case resp.StatusCode < 300 && st.list != nil:
			// chatd reads the list itself (Models); go-openai, whose
			// types fail the whole list on one odd field, gets none.
			st.list.read(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader("{}"))
		case resp.StatusCode < 300:
			st.body = &doneWatcher{ReadCloser: newSSEFixer(resp.Body)}
			resp.Body = st.body
		}
	}
	return resp, nil
}

// redirectError is a request redirected in a way that changes its method
// (301, 302 or 303 to a POST, which a client follows as a GET): the chat
// request would reach the target without its body, and fail there as
// rejected without saying why. Or one redirected to another scheme or
// host, which the API key (Azure's api-key header) and Options.Headers
// would follow: an HTTP client drops only Authorization and cookies.
type redirectError struct {
	status int
	to     string // the Location header
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirected (HTTP %d) to %s", e.status, shownURL(e.to))
}

// RedirectPolicy is the redirect policy (an http.Client's CheckRedirect)
// of every request to an upstream, answers and chatd's start-up probe of
// its model list alike: a redirect changing the request's method, or
// leading to another server than the first request's (sameServer), is
// not followed, so that the API key and the configured headers reach no
// other server; Do then returns the redirect itself (which doer reports
// as a redirectError). Any other is left to next (nil: the default
// policy, at most 10 redirects).
func RedirectPolicy(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.Method != via[0].Method || !sameServer(req.URL, via[0].URL) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// sameServer reports whether a redirect from from to to stays with the
// server configured: the same hostname and port (a scheme's default port
// written or not), or http upgraded to https on the same hostname, both
// on their default ports (Caddy's and Traefik's redirect to https: the
// headers went out over http already).
func sameServer(to, from *url.URL) bool {
	if !strings.EqualFold(to.Hostname(), from.Hostname()) {
		return false
	}
	toScheme, fromScheme := strings.ToLower(to.Scheme), strings.ToLower(from.Scheme)
	switch {
	case toScheme == fromScheme:
		return portOf(to) == portOf(from)
	case fromScheme == "http" && toScheme == "https":
		return portOf(from) == "80" && portOf(to) == "443"
	}
	return false
}

// portOf is u's port, or its scheme's default when it names none.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// maxErrorBody bounds what is read of an error response: an error's JSON
// is far smaller, and an upstream (or proxy) answering an error with an
// endless body would otherwise be read until a timeout, growing in
// memory. A longer body is cut, and its error classified by its status.
const maxErrorBody = 1 << 20

// limitedBody is a body read through a limit.
type limitedBody struct {
	io.Reader
	io.Closer
}

// doneWatcher passes a body through and notices a "data: [DONE]" line,
// and whether the body is an event stream at all. It is read from one
// goroutine.
type doneWatcher struct {
	io.ReadCloser
	line  []byte // the start of the current line
	long  bool   // the current line is too long to be [DONE]
	done  bool
	data  bool // a data line went by
	first byte // the body's first byte that is not white space; 0 before
}

const maxDoneLine = 32

func (w *doneWatcher) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	w.scan(p[:n])
	return n, err
}

// sawDone reports whether a [DONE] line went by.
func (w *doneWatcher) sawDone() bool {
	return w != nil && w.done
}

// Causes of a body that is no event stream (see notStream).
var (
	errWebPage    = errors.New("the reply is a web page, not an event stream")
	errWholeReply = errors.New("the reply is a whole JSON document, not an event stream")
	errNotStream  = errors.New("the reply is not an event stream")
)

// notStream reports a body read so far without a single data line that
// is a web page, a JSON document (an upstream that ignores "stream":
// true, or a base URL that reaches a web site) or other text (a health
// endpoint's "OK", a proxy's message); nil otherwise (nothing but blank
// lines: a connection lost).
func (w *doneWatcher) notStream() error {
	switch {
	case w == nil || w.data:
		return nil
	case w.first == '<':
		return errWebPage
	case w.first == '{':
		return errWholeReply
	case w.first != 0:
		return errNotStream
	}
	return nil
}

func (w *doneWatcher) scan(b []byte) {
	if w.first == 0 {
		if rest := bytes.TrimLeft(b, " \t\r\n"); len(rest) > 0 {
			w.first = rest[0]
		}
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i]
		}
		if keep := maxDoneLine - len(w.line); len(seg) > keep {
			w.line, w.long = append(w.line, seg[:max(keep, 0)]...), true
		} else {
			w.line = append(w.line, seg...)
		}
		if i < 0 {
			return
		}
		line := bytes.TrimSpace(w.line)
		w.data = w.data || bytes.HasPrefix(line, []byte("data:"))
		if !w.long && isDoneLine(line) {
			w.done = true
		}
		w.line, w.long = w.line[:0], false
		b = b[i+1:]
	}
}

func isDoneLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
	return ok && bytes.Equal(bytes.TrimSpace(rest), []byte("[DONE]"))
}

// addMembers writes members (JSON object members, without braces) into
// req's body, a JSON object, as its first members.
func addMembers(req *http.Request, members []byte) error {
	if req.Body == nil {
		return nil
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("llm: read the request body: %w", err)
	}
	rest, ok := bytes.CutPrefix(body, []byte("{"))
	if !ok {
		return errors.New("llm: the request body is not a JSON object")
	}
	out := make([]byte, 0, len(body)+len(members)+1)
	out = append(append(append(out, '{'), members...), ',')
	if bytes.HasPrefix(bytes.TrimSpace(rest), []byte("}")) {
		out = out[:len(out)-1] // an empty object
	}
	out = append(out, rest...)
	req.ContentLength = int64(len(out))
	req.Body = io.NopCloser(bytes.NewReader(out))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	return nil
}
