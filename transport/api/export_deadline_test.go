package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence/sqlite"
	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/internal/reqtimeout"
)

// deadlineServer serves the conversation routes over store with
// RequestTimeout timeout, behind a stand-in for a token check that took
// all of the request's time but left: it marks the request's start
// timeout-left ago, as reqtimeout.Start does for a request whose token
// check then took that long. deadline, when not nil, is called with the
// request's deadline.
func deadlineServer(t *testing.T, store api.ConversationStore, timeout, left time.Duration, deadline func(time.Time)) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	authed := r.Group("/api", func(c *gin.Context) {
		now := time.Now()
		c.Request = c.Request.WithContext(reqtimeout.WithStart(c.Request.Context(), now.Add(left-timeout)))
		if deadline != nil {
			deadline(now.Add(left))
		}
		auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")})
	})
	api.NewConversations(store, api.ConversationOptions{Logger: slog.New(slog.DiscardHandler), RequestTimeout: timeout}).Routes(authed)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// TestExportFirstBytesWithinRequestDeadline: until its first bytes are
// sent, an export waits on the store only for what the request's one
// deadline (RequestTimeout from the request's start, the token check's
// time counted in) left, then answers its JSON 503, so that behind nginx
// (proxy_read_timeout = RequestTimeout + 5 s) the user gets chatd's error
// and not nginx's 504. Here the token check left 100 ms of a 1 min
// timeout. Before, the export started its first wait with a whole
// RequestTimeout of its own after the token check, and each of its waits
// before the first bytes (the conversation, the outline, each text read
// while nothing was sent yet) another: here it waited a minute, past the
// client's bound.
func TestExportFirstBytesWithinRequestDeadline(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	long, longIDs := e.conversation(t, owner, "first question", strings.Repeat("a long first answer ", 4000), "second question", "an answer")
	short, shortIDs := e.conversation(t, owner, "first question", "a short answer", "second question", "stalled answer")
	const timeout, left = time.Minute, 100 * time.Millisecond
	for _, tc := range []struct {
		name, conv, at, stallID string
	}{
		{"the conversation", long.ID, "conversation", ""},
		{"the outline", long.ID, "outline", ""},
		{"the first text, between its pieces", long.ID, "text", longIDs[0]},
		{"a later text, nothing sent yet", short.ID, "text", shortIDs[3]},
	} {
		for _, format := range []string{"json", "markdown"} {
			t.Run(tc.name+", "+format, func(t *testing.T) {
				t.Parallel()
				srv := deadlineServer(t, stallStore{Store: e.store, at: tc.at, stallID: tc.stallID}, timeout, left, nil)
				// The client's own bound only keeps the old behaviour from hanging the test.
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/conversations/"+tc.conv+"/export?format="+format, nil)
				req.Header.Set("X-User", owner)
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatalf("export on a stalled store: %v (the export waited past the request's deadline)", err)
				}
				defer res.Body.Close()
				body, err := io.ReadAll(res.Body)
				if ctx.Err() != nil {
					t.Fatal("the export waited past the request's deadline")
				}
				if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
					res.Header.Get("Content-Disposition") != "" || !strings.Contains(string(body), `"code":"unavailable"`) || err != nil {
					t.Fatalf("%d %s (Retry-After %q, Content-Disposition %q, %v), want a JSON 503 unavailable with Retry-After",
						res.StatusCode, body, res.Header.Get("Retry-After"), res.Header.Get("Content-Disposition"), err)
				}
			})
		}
	}
}

// heldTextStore answers the read of one message's text (stallID) only once
// gate is closed: a store slow at one read, for as long as a test needs
// (until the request's deadline has passed, until the client has received
// the text before it).
type heldTextStore struct {
	stallStore
	gate <-chan struct{}
}

func (s heldTextStore) ReadContent(ctx context.Context, owner, id string, fn func(string) error) error {
	if id == s.stallID {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.ReadContent(ctx, owner, id, fn)
}

// TestExportDownloadOutlivesRequestDeadline: once its first bytes are
// sent, an export goes on past the request's deadline, each of its waits
// on the store bounded on its own (TestExportStoreWaitsBounded): a
// download of any length to a reader of any speed is not cut by it.
func TestExportDownloadOutlivesRequestDeadline(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c, ids := e.conversation(t, owner, "first question", strings.Repeat("a long first answer ", 4000), "second question", "the last answer")
	passed := make(chan struct{})
	// The first bytes must go out within the 3 s the request has left
	// (1 s was short for a loaded machine).
	srv := deadlineServer(t, heldTextStore{stallStore: stallStore{Store: e.store, stallID: ids[3]}, gate: passed}, time.Minute, 3*time.Second,
		func(deadline time.Time) {
			time.AfterFunc(time.Until(deadline)+100*time.Millisecond, func() { close(passed) })
		})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/conversations/"+c.ID+"/export?format=json", nil)
	req.Header.Set("X-User", owner)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("%d, %d bytes, read error %v: want the whole download", res.StatusCode, len(body), err)
	}
	var doc struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Messages) != 4 || doc.Messages[3].Content != "the last answer" {
		t.Fatalf("download not whole (%v): %d messages", err, len(doc.Messages))
	}
}

// TestExportSendsBeforeSlowRead: an export under way sends what it holds
// before it waits on the store, once nothing was sent for a while
// (exportSendEvery, 0 here), so a proxy in front (nginx cuts a response
// it got nothing of for its proxy_read_timeout, the request timeout +
// 5 s) gets bytes at least once per wait, each bounded by the request
// timeout. Before, it held up to 32 KiB, over any number of waits, each
// bounded only on its own: here the client never got the text written
// before the slow read, and the read waited its whole minute.
func TestExportSendsBeforeSlowRead(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c, ids := e.conversation(t, owner, "first question", strings.Repeat("a long first answer ", 4000), "the text before the slow read", "the last answer")
	for _, format := range []string{"json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			seen := make(chan struct{})
			gin.SetMode(gin.TestMode)
			r := gin.New()
			authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")}) })
			h := api.NewConversations(heldTextStore{stallStore: stallStore{Store: e.store, stallID: ids[3]}, gate: seen},
				api.ConversationOptions{Logger: slog.New(slog.DiscardHandler), RequestTimeout: time.Minute})
			api.SetExportSendEvery(h, 0)
			h.Routes(authed)
			srv := httptest.NewServer(r)
			t.Cleanup(srv.Close)
			// The client's own bound only keeps the old behaviour from hanging the test.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/conversations/"+c.ID+"/export?format="+format, nil)
			req.Header.Set("X-User", owner)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body []byte
			buf := make([]byte, 4<<10)
			for {
				n, err := res.Body.Read(buf)
				body = append(body, buf[:n]...)
				if seen != nil && strings.Contains(string(body), "the text before the slow read") {
					close(seen)
					seen = nil
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%v after %d bytes: the text before the slow read was not sent before it", err, len(body))
				}
			}
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "the last answer") {
				t.Fatalf("%d, %d bytes: want the whole download", res.StatusCode, len(body))
			}
		})
	}
}

// latencyStore answers every read of a text (content or reasoning) only
// after delay: a healthy store far away, slow per read but never stalled.
type latencyStore struct {
	*sqlite.Store
	delay time.Duration
}

func (s latencyStore) wait(ctx context.Context) error {
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s latencyStore) ReadContent(ctx context.Context, owner, id string, fn func(string) error) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.ReadContent(ctx, owner, id, fn)
}

func (s latencyStore) ReadReasoning(ctx context.Context, owner, id string, fn func(string) error) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.ReadReasoning(ctx, owner, id, fn)
}

// exportedAt is an export's own time, the one part two exports of the
// same conversation differ in.
var exportedAt = regexp.MustCompile(`"exportedAt":"[^"]*"|- Exported: [^\n]*`)

// TestExportManyReadsOutlastDeadline: an export of many short messages
// from a store slow per read (two reads a message, each taking delay)
// completes byte for byte, though its reads take longer in all than the
// request timeout: it sends what it holds once it held it for
// exportSendEvery (a tenth of the timeout here, a second by default),
// and its reads after are each bounded on their own. Before, its first
// bytes went out only once its 32 KiB buffer filled, its reads until
// then sharing the request's one deadline: here they never filled it,
// and the export answered 503 at the deadline.
func TestExportManyReadsOutlastDeadline(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	// 160 reads: at least 3.2 s, past the timeout; the first bytes go out
	// after a tenth of it, with the rest of it as room for a loaded machine
	// (400 ms against reads of 640 ms was short).
	const timeout, delay, messages = 2 * time.Second, 20 * time.Millisecond, 80
	var texts []string
	for i := range messages / 2 {
		texts = append(texts, fmt.Sprintf("question %d", i), fmt.Sprintf("answer %d", i))
	}
	c, _ := e.conversation(t, owner, texts...)
	export := func(t *testing.T, store api.ConversationStore, timeout time.Duration, format string) (*http.Response, []byte, error) {
		t.Helper()
		gin.SetMode(gin.TestMode)
		r := gin.New()
		authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")}) })
		h := api.NewConversations(store, api.ConversationOptions{Logger: slog.New(slog.DiscardHandler), RequestTimeout: timeout})
		api.SetExportSendEvery(h, timeout/10)
		h.Routes(authed)
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/conversations/"+c.ID+"/export?format="+format, nil)
		req.Header.Set("X-User", owner)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res, exportedAt.ReplaceAll(body, nil), err
	}
	for _, format := range []string{"json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			res, want, err := export(t, e.store, time.Minute, format) // what the slow store's export must give
			if res.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("export from the store itself: %d %s (%v)", res.StatusCode, want, err)
			}
			if len(want) >= 32<<10 {
				t.Fatalf("the export is %d bytes: it must fit the export's 32 KiB buffer to show the fix", len(want))
			}
			res, got, err := export(t, latencyStore{Store: e.store, delay: delay}, timeout, format)
			if res.StatusCode != http.StatusOK || err != nil || !bytes.Equal(got, want) {
				t.Fatalf("export from a store slow per read: %d, %d bytes (%v), want the %d bytes of the export from the store itself:\n%s",
					res.StatusCode, len(got), err, len(want), got)
			}
		})
	}
}
