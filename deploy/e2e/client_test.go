package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// apiCall sends a JSON request and decodes a JSON answer into out (if not
// nil); it fails the test unless the status is want.
func apiCall(t testing.TB, c *http.Client, method, url, token string, body, out any, want int) http.Header {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return resp.Header
}

// account is a registered user.
type account struct {
	Token string `json:"token"`
	User  struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
}

// register creates a fresh user through the site and returns its token.
func register(t testing.TB, c *http.Client, base string) account {
	t.Helper()
	var a account
	email := fmt.Sprintf("deploy-%d@example.com", time.Now().UnixNano())
	apiCall(t, c, http.MethodPost, base+"/api/auth/register", "",
		map[string]string{"email": email, "password": "correct horse battery", "name": "Deploy Test"}, &a, http.StatusCreated)
	if a.Token == "" || a.User.ID == "" {
		t.Fatalf("register answered no token or user: %+v", a)
	}
	return a
}

// newConversation creates a conversation and returns its id.
func newConversation(t testing.TB, c *http.Client, base, token string) string {
	t.Helper()
	var out struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	apiCall(t, c, http.MethodPost, base+"/api/conversations", token, map[string]string{"title": "deploy test"}, &out, http.StatusCreated)
	if len(out.Conversation.ID) != 24 {
		t.Fatalf("conversation id %q is not 24 hex characters", out.Conversation.ID)
	}
	return out.Conversation.ID
}

// frame is a server frame of docs/protocol.md, the fields the test reads.
type frame struct {
	Type           string          `json:"type"`
	ID             json.RawMessage `json:"id,omitempty"`
	Code           string          `json:"code,omitempty"`
	Message        json.RawMessage `json:"message,omitempty"`
	ConversationID string          `json:"conversationId,omitempty"`
	MessageID      string          `json:"messageId,omitempty"`
	Seq            int             `json:"seq,omitempty"`
	Text           string          `json:"text,omitempty"`
	Status         string          `json:"status,omitempty"`
	Protocol       string          `json:"protocol,omitempty"`
	UserID         string          `json:"userId,omitempty"`
	Error          json.RawMessage `json:"error,omitempty"`
}

// wsConn is a WebSocket to /ws whose frames a single reader goroutine
// delivers on a channel, so the connection keeps answering pings while the
// test waits or idles.
type wsConn struct {
	c      *websocket.Conn
	frames chan frame
	errc   chan error
}

// dialWS opens the live channel the way a browser does: token in the
// subprotocol list and an Origin header.
func dialWS(ctx context.Context, s *nginxSite, token, origin string) (*wsConn, *http.Response, error) {
	wsURL := strings.Replace(s.URL("/ws"), "https://", "wss://", 1)
	return dialLive(ctx, wsURL, s.Client(false), token, origin)
}

// dialLive opens the live channel at wsURL (ws:// or wss://) over client.
func dialLive(ctx context.Context, wsURL string, client *http.Client, token, origin string) (*wsConn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   client,
		HTTPHeader:   h,
		Subprotocols: []string{"chat.v1", "bearer." + token},
	})
	if err != nil {
		return nil, resp, err
	}
	w := &wsConn{c: c, frames: make(chan frame, 1024), errc: make(chan error, 1)}
	go w.readLoop()
	return w, resp, nil
}

func (w *wsConn) readLoop() {
	for {
		_, b, err := w.c.Read(context.Background())
		if err != nil {
			w.errc <- err
			close(w.frames)
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			w.errc <- fmt.Errorf("frame %q: %w", b, err)
			close(w.frames)
			return
		}
		w.frames <- f
	}
}

// send writes one client frame.
func (w *wsConn) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.c.Write(ctx, websocket.MessageText, b)
}

// next returns the next frame, or an error when the connection ended or ctx
// expired.
func (w *wsConn) next(ctx context.Context) (frame, error) {
	select {
	case f, ok := <-w.frames:
		if !ok {
			return frame{}, fmt.Errorf("connection ended: %w", <-w.errc)
		}
		return f, nil
	case <-ctx.Done():
		return frame{}, ctx.Err()
	}
}

// until reads frames until one of type typ arrives (returning it and the
// frames before it).
func (w *wsConn) until(ctx context.Context, typ string) (frame, []frame, error) {
	var seen []frame
	for {
		f, err := w.next(ctx)
		if err != nil {
			return f, seen, fmt.Errorf("waiting for %q after %d frames: %w", typ, len(seen), err)
		}
		if f.Type == "error" {
			return f, seen, fmt.Errorf("server error frame while waiting for %q: code %s, message %s", typ, f.Code, f.Message)
		}
		if f.Type == typ {
			return f, seen, nil
		}
		seen = append(seen, f)
	}
}

func (w *wsConn) close() { w.c.Close(websocket.StatusNormalClosure, "") }

// sseEvent is one Server-Sent Event and when it arrived.
type sseEvent struct {
	Event string
	ID    string
	Data  string
	At    time.Duration // since the request was sent
}

// readSSE parses a text/event-stream body until it ends, stamping each event
// with its arrival time relative to start.
func readSSE(body io.Reader, start time.Time) ([]sseEvent, error) {
	ch := make(chan sseEvent)
	errc := make(chan error, 1)
	go func() {
		errc <- streamSSE(body, start, ch)
		close(ch)
	}()
	var evs []sseEvent
	for e := range ch {
		evs = append(evs, e)
	}
	return evs, <-errc
}

// streamSSE parses a text/event-stream body, delivering each event on out
// as it completes, until the body ends.
func streamSSE(body io.Reader, start time.Time, out chan<- sseEvent) error {
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || len(data) > 0 {
				cur.Data = strings.Join(data, "\n")
				cur.At = time.Since(start)
				out <- cur
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			// comment (keep-alive)
		case strings.HasPrefix(line, "event:"):
			cur.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			cur.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return sc.Err()
}
