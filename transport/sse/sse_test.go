package sse_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport"
	"chatd/transport/auth"
	"chatd/transport/httperr"
	"chatd/transport/internal/hubtest"
	"chatd/transport/internal/nettest"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

const testTimeout = 20 * time.Second

// server serves the SSE routes over the fake hub. Requests name their
// user with "Authorization: Bearer token-<user>", and their token's expiry,
// if any, with "X-Expires-In: <duration>"; the body limit is the router's
// default.
type server struct {
	t      *testing.T
	hub    *hubtest.Hub
	srv    *httptest.Server
	limits *limits.Users
	h      *sse.Handler
}

func newServer(t *testing.T, opts sse.Options, smallBuffers bool) *server {
	t.Helper()
	s := &server{t: t, hub: hubtest.New()}
	opts.Hub = s.hub
	if opts.Limits == nil {
		opts.Limits = limits.New(limits.Options{})
	}
	s.limits = opts.Limits
	opts.Logger = slog.New(slog.DiscardHandler)
	h := sse.NewHandler(opts)
	s.h = h
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	authed := r.Group("/api", httperr.LimitBody(transport.DefaultBodyLimit), func(c *gin.Context) {
		user, ok := strings.CutPrefix(auth.BearerToken(c.Request.Header), "token-")
		if !ok {
			httperr.AbortError(c, httperr.Unauthorized("no token"))
			return
		}
		id := auth.Identity{UserID: user}
		if d, err := time.ParseDuration(c.GetHeader("X-Expires-In")); err == nil {
			id.ExpiresAt = time.Now().Add(d)
			id.AcceptedUntil = id.ExpiresAt
		}
		auth.SetIdentity(c, id)
	})
	h.Routes(authed)
	s.srv = httptest.NewUnstartedServer(r)
	if smallBuffers {
		s.srv.Listener = nettest.SmallSendBuffers(s.srv.Listener)
	}
	s.srv.Start()
	t.Cleanup(func() {
		h.Shutdown()
		s.srv.Close()
	})
	return s
}

// request sends a request and returns the answer, its body unread.
func (s *server) request(user, method, path, body string, header ...string) *http.Response {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return s.requestBody(user, method, path, rd, header...)
}

// requestBody is request with the body read from rd (nil: none), which
// may arrive as slowly as the test writes it.
func (s *server) requestBody(user, method, path string, rd io.Reader, header ...string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer token-"+user)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	s.t.Cleanup(func() { res.Body.Close() })
	return res
}

func (s *server) waitHub(what string, cond func(*hubtest.Hub) bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if !s.hub.WaitFor(ctx, cond) {
		s.t.Fatalf("timed out waiting for %s", what)
	}
}

// event is one server-sent event.
type event struct{ name, id, data string }

// readEvent reads the next event, skipping comment lines.
func readEvent(t *testing.T, r *bufio.Reader) (event, error) {
	t.Helper()
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func field(data, name string) string {
	i := strings.Index(data, `"`+name+`":"`)
	if i < 0 {
		return ""
	}
	rest := data[i+len(name)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestEventFraming: a send streams its frames as events (event: the type,
// id: the answer's message id and the seq of deltas, or "done", data: the
// JSON), kept by no cache (no-store), and ends after its done.
func TestEventFraming(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	res := s.request("u", "POST", "/api/conversations/"+conv+"/messages", `{"content":"hi"}`, "Accept", "text/event-stream")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") ||
		res.Header.Get("X-Accel-Buffering") != "no" || res.Header.Get("Cache-Control") != "no-store, no-transform" {
		t.Fatalf("answer %d %v", res.StatusCode, res.Header)
	}
	r := bufio.NewReader(res.Body)
	ack, err := readEvent(t, r)
	if err != nil || ack.name != "ack" || ack.id != "" {
		t.Fatalf("first event %+v (%v)", ack, err)
	}
	msgID := field(ack.data, "messageId")
	s.hub.DeliverAll("u", protocol.Delta(conv, msgID, 5, "hello"))
	s.hub.DeliverAll("u", protocol.Done(persistence.Message{ID: msgID, ConversationID: conv, Status: persistence.StatusComplete, Content: "hello"}, nil))
	delta, _ := readEvent(t, r)
	done, _ := readEvent(t, r)
	if delta.name != "delta" || delta.id != msgID+":5" || !strings.Contains(delta.data, `"text":"hello"`) {
		t.Fatalf("delta event %+v", delta)
	}
	if done.name != "done" || done.id != msgID+":done" {
		t.Fatalf("done event %+v", done)
	}
	if _, err := readEvent(t, r); err != io.EOF {
		t.Fatalf("the stream goes on after its done: %v", err)
	}
	// Without Accept: text/event-stream, 202 with the ids.
	res = s.request("u", "POST", "/api/conversations/"+conv+"/messages", `{"content":"hi"}`)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("plain send: %d", res.StatusCode)
	}
}

// TestResumeCursor: GET .../stream resumes after lastSeq (and
// lastReasoningSeq), or after the Last-Event-ID header an EventSource
// sends; with both, after the later of the two, each cursor on its own: an
// EventSource reconnects to the URL of its first open, with the id of the
// last event it got since, and was sent again what it had (before, the
// URL's cursor won). The header is read in today's form, which names the
// answer ("<messageId>:<seq>[/<rseq>]", "<messageId>:done"), and in the
// old one, the cursors alone. A header of another answer is not of this
// stream: the URL stands. After the answer's done there is nothing left:
// 204, which ends an EventSource. A bad cursor is a 400, a bad header
// beside a good URL cursor is ignored.
func TestResumeCursor(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv, msg, other := persistence.NewID(), persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", msg)
	tests := []struct {
		name, query, lastEventID string
		status                   int
		seq                      int64
		rseq                     int64 // -1: none
	}{
		{"Last-Event-ID", "", msg + ":7", 200, 7, -1},
		{"Last-Event-ID with reasoning", "", msg + ":7/4", 200, 7, 4},
		{"Last-Event-ID without messageId in the URL", "&noMessageId", msg + ":7", 200, 7, -1},
		{"old Last-Event-ID", "", "7", 200, 7, -1},
		{"old Last-Event-ID with reasoning", "", "7/4", 200, 7, 4},
		{"lastSeq", "&lastSeq=3", "", 200, 3, -1},
		{"a later Last-Event-ID", "&lastSeq=3", msg + ":7", 200, 7, -1},
		{"a later old Last-Event-ID", "&lastSeq=3", "7", 200, 7, -1},
		{"a later lastSeq", "&lastSeq=9", msg + ":7", 200, 9, -1},
		{"each cursor on its own", "&lastSeq=3&lastReasoningSeq=9", msg + ":7/4", 200, 7, 9},
		{"each cursor on its own, old", "&lastSeq=3&lastReasoningSeq=9", "7/4", 200, 7, 9},
		{"reasoning only in the header", "&lastSeq=3", msg + ":7/4", 200, 7, 4},
		{"another answer's header", "&lastSeq=3", other + ":7", 200, 3, -1},
		{"after the done", "", msg + ":done", 204, 0, -1},
		{"a bad header beside the URL", "&lastSeq=3", "x", 200, 3, -1},
		{"a bad message id beside the URL", "&lastSeq=3", "x:7", 200, 3, -1},
		{"bad cursor", "&lastSeq=x", "", 400, 0, -1},
		{"negative cursor", "", "-1", 400, 0, -1},
		{"a bad message id", "", "x:7", 400, 0, -1},
		{"a bad cursor after the message id", "", msg + ":x", 400, 0, -1},
	}
	for _, tc := range tests {
		var hdr []string
		if tc.lastEventID != "" {
			hdr = []string{"Last-Event-ID", tc.lastEventID}
		}
		path := "/api/conversations/" + conv + "/stream?messageId=" + msg + tc.query
		if tc.query == "&noMessageId" {
			path = "/api/conversations/" + conv + "/stream"
		}
		req, status := s.resumeWith(t, path, hdr)
		if status != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, status, tc.status)
		}
		if status == 200 && (req.MessageID != msg || !cursorIs(req.LastSeq, tc.seq) || !cursorIs(req.LastReasoningSeq, tc.rseq)) {
			t.Fatalf("%s: subscribe request %+v, want seq %d rseq %d", tc.name, req, tc.seq, tc.rseq)
		}
	}
}

// TestResumeUnnamedAnnounced: GET .../stream that names no answer (no
// cursor, a lastSeq, an old Last-Event-ID) subscribes to the answer running
// as one that announces it with its message frame, as a WebSocket
// subscribe naming none is sent; one that names it (messageId, a
// Last-Event-ID of today's form) is a named resume, sent no message frame.
func TestResumeUnnamedAnnounced(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv, msg := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", msg)
	path := "/api/conversations/" + conv + "/stream"
	tests := []struct {
		name, query, lastEventID string
		announce                 bool
	}{
		{"no cursor", "", "", true},
		{"lastSeq", "?lastSeq=10", "", true},
		{"old Last-Event-ID", "", "10", true},
		{"messageId", "?messageId=" + msg, "", false},
		{"messageId and lastSeq", "?messageId=" + msg + "&lastSeq=10", "", false},
		{"Last-Event-ID naming the answer", "", msg + ":10", false},
	}
	for _, tc := range tests {
		var hdr []string
		if tc.lastEventID != "" {
			hdr = []string{"Last-Event-ID", tc.lastEventID}
		}
		req, status := s.resumeWith(t, path+tc.query, hdr)
		if status != 200 || req.MessageID != msg || req.Announce != tc.announce {
			t.Errorf("%s: %d %+v, want answer %s announced %v", tc.name, status, req, msg, tc.announce)
		}
	}
}

// TestResumeCursorEvents: GET /api/events, which carries every later
// answer of the conversation too, resumes the answer a Last-Event-ID of
// today's form names, whichever runs: the URL's, with the later of the
// two cursors; a later one, exactly where the client was in it; after an
// answer's done, none (the stream follows the conversation). With an id of
// the old form it takes the later of lastSeq and Last-Event-ID only while
// the answer named is still running (the events the client got are then
// all of it); once another runs or none does, the header may be a later
// answer's position, and the URL's cursor is taken.
func TestResumeCursorEvents(t *testing.T) {
	t.Parallel()
	conv, msg, next := persistence.NewID(), persistence.NewID(), persistence.NewID()
	for _, tc := range []struct {
		name, running, lastEventID string
		wantMessage                string
		want                       int64 // -1: no cursor
	}{
		{"the answer still runs", msg, msg + ":7", msg, 7},
		{"the answer ended", "", msg + ":7", msg, 7},
		{"the answer's done", "", msg + ":done", "", -1},
		{"the answer's done, the next runs", next, msg + ":done", "", -1},
		{"in the next answer", next, next + ":2", next, 2},
		{"in the next answer, ended", "", next + ":2", next, 2},
		{"old id, the answer still runs", msg, "7", msg, 7},
		{"old id, another answer runs", next, "7", msg, 3},
		{"old id, none runs", "", "7", msg, 3},
	} {
		s := newServer(t, sse.Options{}, false)
		s.hub.AddConversation(conv, "u", tc.running)
		req, status := s.resumeWith(t, "/api/events?conversationId="+conv+"&messageId="+msg+"&lastSeq=3", []string{"Last-Event-ID", tc.lastEventID})
		if status != 200 || req.MessageID != tc.wantMessage || !cursorIs(req.LastSeq, tc.want) {
			t.Fatalf("%s: %d %+v, want message %q lastSeq %d", tc.name, status, req, tc.wantMessage, tc.want)
		}
	}
}

// resumeWith opens path as user u with header and returns its status and,
// for a 200, the subscribe request the hub got (read after the ack).
func (s *server) resumeWith(t *testing.T, path string, header []string) (hub.SubscribeRequest, int) {
	t.Helper()
	before := len(s.hub.SubscribeRequests())
	res := s.request("u", "GET", path, "", header...)
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return hub.SubscribeRequest{}, res.StatusCode
	}
	ack, err := readEvent(t, bufio.NewReader(res.Body))
	if err != nil || ack.name != "ack" {
		t.Fatalf("%s: %+v %v", path, ack, err)
	}
	reqs := s.hub.SubscribeRequests()
	if len(reqs) != before+1 {
		t.Fatalf("%s: subscribe requests %+v", path, reqs)
	}
	return reqs[before], res.StatusCode
}

// cursorIs reports whether c is want (-1: no cursor).
func cursorIs(c *int64, want int64) bool {
	if want < 0 {
		return c == nil
	}
	return c != nil && *c == want
}

// TestResumeForeignIDLooksUnknown: without messageId, resuming another
// user's conversation answers exactly like an unknown id, whether or not
// an answer runs in it.
func TestResumeForeignIDLooksUnknown(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	running, idle := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(running, "alice", persistence.NewID())
	s.hub.AddConversation(idle, "alice", "")
	answer := func(conv string) string {
		res := s.request("bob", "GET", "/api/conversations/"+conv+"/stream", "")
		body, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, strings.ReplaceAll(string(body), conv, "ID"))
	}
	unknown := answer(persistence.NewID())
	for name, conv := range map[string]string{"running": running, "idle": idle} {
		if got := answer(conv); got != unknown {
			t.Errorf("bob on alice's %s conversation: %q; on an unknown id: %q", name, got, unknown)
		}
	}
}

// TestRESTSendFitsContent: the REST send takes MaxContentChars characters
// of any script within the default body limit.
func TestRESTSendFitsContent(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	for _, content := range []string{strings.Repeat("中", protocol.MaxContentChars), strings.Repeat(`\ud83d\ude00`, protocol.MaxContentChars)} {
		res := s.request("u", "POST", "/api/conversations/"+conv+"/messages", `{"content":"`+content+`"}`)
		if res.StatusCode != http.StatusAccepted {
			body, _ := io.ReadAll(res.Body)
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
	}
	for _, send := range s.hub.Sends() {
		if n := utf8.RuneCountInString(send.Content); n != protocol.MaxContentChars {
			t.Fatalf("the hub got %d characters", n)
		}
	}
}

// TestStoppedReaderDisconnected: an event stream whose client stops
// reading is closed within the write timeout once its queue fills, its
// connection slot is freed, and the client can resume.
func TestStoppedReaderDisconnected(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{QueueSize: 8, WriteTimeout: 300 * time.Millisecond,
		Limits: limits.New(limits.Options{MaxConns: 1})}, true)
	conv, msg := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", msg)
	conn := dialSmall(t, strings.TrimPrefix(s.srv.URL, "http://"))
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: chatd\r\nAuthorization: Bearer token-u\r\n\r\n")
	br := bufio.NewReaderSize(conn, 512)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q %v", line, err)
	}
	s.waitHub("the stream to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	// The client reads no more; the server's sends fill the socket
	// buffers, then the queue.
	text := strings.Repeat("x", 16<<10)
	start := time.Now()
	for i := range 200 {
		s.hub.DeliverAll("u", protocol.Delta(conv, msg, int64(i+1)*int64(len(text)), text))
	}
	s.waitHub("the stream to end", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("disconnected after %v", d)
	}
	// The handler releases the slot as it returns, just after it detached.
	// The handler releases the slot as it returns, just after it detached:
	// poll for it (nothing signals it), within the test's timeout.
	freed := time.Now().Add(testTimeout)
	for !s.limits.AcquireConn("u") {
		if time.Now().After(freed) {
			t.Fatal("the stream's connection slot was not freed")
		}
		runtime.Gosched()
	}
	s.limits.ReleaseConn("u")
	res := s.request("u", "GET", "/api/conversations/"+conv+"/stream?messageId="+msg, "", "Last-Event-ID", "16384")
	if res.StatusCode != 200 {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	if ev, err := readEvent(t, bufio.NewReader(res.Body)); err != nil || ev.name != "ack" {
		t.Fatalf("resume: %+v %v", ev, err)
	}
}

// TestStreamsEndAtLogout: closing a user's subscribers (logout, account
// removed, shutdown) ends their event streams after what is queued, with a
// last closed event that says why, as a WebSocket's close frame would.
func TestStreamsEndAtLogout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   protocol.CloseCode
		reason string
		want   string
	}{
		{protocol.CloseUnauthorized, protocol.ReasonSignedOut, `{"type":"closed","closeCode":4401,"reason":"signed out"}`},
		{protocol.CloseUnauthorized, protocol.ReasonAccountDeleted, `{"type":"closed","closeCode":4401,"reason":"account deleted"}`},
		{protocol.CloseGoingAway, "", `{"type":"closed","closeCode":1001}`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{}, false)
			res := s.request("u", "GET", "/api/events", "")
			r := bufio.NewReader(res.Body)
			s.waitHub("the stream to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
			s.hub.DeliverAll("u", protocol.Conversation("updated", persistence.Conversation{ID: persistence.NewID()}))
			for _, sub := range s.hub.Subscribers("u") {
				sub.Close(tc.code, tc.reason)
			}
			if ev, err := readEvent(t, r); err != nil || ev.name != "conversation" {
				t.Fatalf("queued frame: %+v %v", ev, err)
			}
			if ev, err := readEvent(t, r); err != nil || ev.name != "closed" || ev.data != tc.want {
				t.Fatalf("last event: %+v %v, want closed %s", ev, err, tc.want)
			}
			if _, err := readEvent(t, r); err != io.EOF {
				t.Fatalf("stream still open: %v", err)
			}
		})
	}
}

// TestFullQueueEndsWithClosed: a stream whose queue filled up (its client
// read too slowly) ends, once the client reads again, with the closed
// event 4408 a WebSocket's close frame would carry, the frames still
// queued dropped; the client reconnects and resumes, as after a network
// cut but without taking it for one. Before, it ended without a closed
// event, and the web client checked its token and counted the end
// towards "Offline" at each one.
func TestFullQueueEndsWithClosed(t *testing.T) {
	t.Parallel()
	metrics := &slowCount{slow: make(chan string, 4)}
	s := newServer(t, sse.Options{QueueSize: 8, WriteTimeout: testTimeout, Metrics: metrics}, true)
	conv, msg := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "u", msg)
	conn := dialSmall(t, strings.TrimPrefix(s.srv.URL, "http://"))
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: chatd\r\nAuthorization: Bearer token-u\r\n\r\n")
	br := bufio.NewReaderSize(conn, 512)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("response %v %v", res, err)
	}
	s.waitHub("the stream to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	// The client reads no more: the frames fill the socket buffers, then
	// the queue.
	text := strings.Repeat("x", 16<<10)
	const frames = 200
	for i := range frames {
		s.hub.DeliverAll("u", protocol.Delta(conv, msg, int64(i+1)*int64(len(text)), text))
	}
	select {
	case got := <-metrics.slow:
		if got != "queue_full" {
			t.Fatalf("closed for %q, want queue_full", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("the queue never filled")
	}
	r := bufio.NewReader(res.Body)
	want := `{"type":"closed","closeCode":4408,"reason":"too slow: send queue full; reconnect and resume"}`
	deltas := 0
	for {
		ev, err := readEvent(t, r)
		if err != nil {
			t.Fatalf("after %d deltas: %v, want the closed event", deltas, err)
		}
		if ev.name == "closed" {
			if ev.data != want {
				t.Fatalf("closed %s, want %s", ev.data, want)
			}
			break
		}
		if ev.name != "delta" {
			t.Fatalf("event %+v", ev)
		}
		deltas++
	}
	if deltas >= frames {
		t.Fatalf("%d deltas before the closed event: the queued frames were not dropped", deltas)
	}
	if _, err := readEvent(t, r); err != io.EOF {
		t.Fatalf("stream still open after closed: %v", err)
	}
}

// dialSmall opens a TCP connection with a small receive buffer.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := nettest.SmallReceiveBuffer().Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
