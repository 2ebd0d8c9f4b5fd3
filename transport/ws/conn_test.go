package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// TestUpgradeRefused: authentication and the origin check answer before
// the upgrade, with the API's JSON errors; a token in the query string is
// refused whatever the case of its name (the connection limit closes the
// upgraded connection instead: TestConnectionLimitCloses).
func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	tests := []struct {
		name   string
		query  string
		header map[string]string
		status int
	}{
		{"no token", "", nil, http.StatusUnauthorized},
		{"bad token", "", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"token in the query", "?access_token=token-a", nil, http.StatusBadRequest},
		{"token in the query, capitalised", "?Token=token-a", nil, http.StatusBadRequest},
		{"token in the query, upper case", "?TOKEN=token-a", map[string]string{"Authorization": "Bearer token-a"}, http.StatusBadRequest},
		{"token in the query after a semicolon", "?x=1;jwt=token-a", map[string]string{"Authorization": "Bearer token-a"}, http.StatusBadRequest},
		{"foreign origin", "", map[string]string{"Authorization": "Bearer token-a", "Origin": "https://evil.example"}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, res, err := websocket.Dial(ctx, s.url()+tc.query, &websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				c.CloseNow()
				t.Fatal("upgraded")
			}
			if res == nil || res.StatusCode != tc.status {
				t.Fatalf("answer %v, want %d", res, tc.status)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			// Every 429 of the API says when to come back (docs/api.md).
			if tc.status == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		})
	}
	// The subprotocol carries a browser's token.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.url(), &websocket.DialOptions{Subprotocols: []string{protocol.Name, "bearer.token-b"}})
	if err != nil {
		t.Fatalf("subprotocol token: %v", err)
	}
	if c.Subprotocol() != protocol.Name {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	c.CloseNow()
}

// TestFrameLimitFitsContent: any content within protocol.MaxContentChars
// fits in a frame under the default read limit, in any script and even
// fully JSON-escaped; a frame over the limit closes with 1009.
func TestFrameLimitFitsContent(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	if hello := cl.expect("hello"); hello.Max != ws.DefaultReadLimit {
		t.Fatalf("hello advertises %d bytes, want %d", hello.Max, ws.DefaultReadLimit)
	}
	escaped := strings.Repeat(`\ud83d\ude00`, protocol.MaxContentChars) // 😀, 12 bytes each
	tests := []struct{ name, content string }{
		{"Han", strings.Repeat("中", protocol.MaxContentChars)},
		{"emoji", strings.Repeat("😀", protocol.MaxContentChars)},
		{"escaped emoji", escaped},
	}
	for i, tc := range tests {
		var content string
		if tc.name == "escaped emoji" {
			content = tc.content
		} else {
			b, _ := json.Marshal(tc.content)
			content = string(b[1 : len(b)-1])
		}
		cl.write(`{"type":"send","id":"` + tc.name + `","content":"` + content + `"}`)
		if f := cl.expect("ack"); string(f.ID) != `"`+tc.name+`"` {
			t.Fatalf("%s: %s", tc.name, f.raw)
		}
		sends := s.hub.Sends()
		if got := utf8.RuneCountInString(sends[i].Content); got != protocol.MaxContentChars {
			t.Fatalf("%s: the hub got %d characters", tc.name, got)
		}
	}
	big := s.dial(dialOptions{user: "u"})
	big.expect("hello")
	big.write(`{"type":"send","content":"` + strings.Repeat("y", ws.DefaultReadLimit) + `"}`)
	if got := big.closeStatus(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %d, want 1009", got)
	}
}

// TestBadFramesAnswered: invalid frames get error frames (echoing the id
// when one could be read) and the connection stays; binary frames are
// refused too; one more invalid frame than MaxInvalidFrames a minute
// closes it with 1008.
func TestBadFramesAnswered(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{MaxInvalidFrames: 13}})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	tests := []struct{ frame, code, id string }{
		{`not json`, "bad_frame", ""},
		{`[1,2]`, "bad_frame", ""},
		{`{"type":"send","id":"a"`, "bad_frame", ""},
		{`{"id":"b"}`, "unknown_type", `"b"`},
		{`{"type":"dance","id":"c"}`, "unknown_type", `"c"`},
		{`{"type":"send","id":"d"}`, "invalid_field", `"d"`},
		{`{"type":"send","id":"e","content":42}`, "invalid_field", `"e"`},
		{`{"type":"send","id":"f","content":"hi","conversationId":"nope"}`, "invalid_field", `"f"`},
		{`{"type":"cancel","id":"g"}`, "invalid_field", `"g"`},
		{`{"type":"subscribe","id":"h","conversationId":"0123456789abcdef01234567","lastSeq":-1}`, "invalid_field", `"h"`},
		{`{"type":"send","id":"i","content":"` + strings.Repeat("x", protocol.MaxContentChars+1) + `"}`, "invalid_field", `"i"`},
		{`{"type":"ping","id":{"an":"object"}}`, "invalid_field", ""},
	}
	for _, tc := range tests {
		cl.write(tc.frame)
		f := cl.expect("error")
		if f.Code != tc.code || string(f.ID) != tc.id && !(tc.id == "" && f.ID == nil) || len(f.Message) == 0 {
			t.Fatalf("frame %.60s: got %s, want code %s id %s", tc.frame, f.raw, tc.code, tc.id)
		}
		cl.write(`{"type":"ping","id":"alive"}`) // the connection is kept
		cl.expect("pong")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if f := cl.expect("error"); f.Code != protocol.CodeBadFrame {
		t.Fatalf("binary frame: %s", f.raw)
	}
	cl.write(`garbage`)
	cl.expect("error")
	if got := cl.closeStatus(); got != websocket.StatusPolicyViolation {
		t.Fatalf("close status %d, want 1008", got)
	}
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}

// TestDeadPeerDropped: a peer that stops answering pings is dropped after
// the ping timeout, while one that reads keeps being pinged and stays.
// The timeout is 2 s, so that a loaded machine holding the reading
// client's goroutines for a second or two does not drop it too (200 ms
// did).
func TestDeadPeerDropped(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 2 * time.Second}})
	alive := s.dial(dialOptions{user: "u"})
	s.dial(dialOptions{user: "u", paused: true}) // reads nothing: pongs never go out
	s.waitHub("the dead peer to be dropped", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
	for len(alive.pings) > 0 { // the pings before the drop
		<-alive.pings
	}
	for range 40 { // 2 s of pings after the drop: twice the timeout in all
		select {
		case <-alive.pings:
		case <-alive.closed:
			t.Fatalf("the reading client was dropped: %v", alive.err)
		}
	}
	alive.write(`{"type":"ping","id":"p"}`)
	alive.expect("hello")
	alive.expect("pong")
}

// TestSlowClientClosed4408: a client that stops reading is closed with
// 4408 once its queue fills, and its connection is detached from the hub.
func TestSlowClientClosed4408(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{smallBuffers: true, opts: ws.Options{QueueSize: 8}})
	cl := s.dial(dialOptions{user: "slow", paused: true, smallBuffer: true})
	s.waitHub("the connection to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	text := strings.Repeat("x", 16<<10)
	for i := range 200 {
		s.hub.DeliverAll("slow", protocol.Delta("c", "m", int64(i+1)*int64(len(text)), text))
	}
	close(cl.resume)
	for {
		select {
		case <-cl.frames:
			continue
		case <-cl.closed:
		}
		break
	}
	if got := websocket.CloseStatus(cl.err); got != websocket.StatusCode(protocol.CloseSlowClient) {
		t.Fatalf("close status %d, want 4408 (%v)", got, cl.err)
	}
	s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
	if !s.limits.AcquireConn("slow") {
		t.Fatal("the slow connection's slot was not freed")
	}
}

// slowCount counts the connections closed for being too slow (their
// reasons in slow, when made), and those refused for their user's limit.
type slowCount struct {
	n, refused atomic.Int32
	slow       chan string
}

func (*slowCount) ConnectionOpened() {}
func (*slowCount) ConnectionClosed() {}
func (m *slowCount) SlowClientDisconnected(reason string) {
	m.n.Add(1)
	if m.slow != nil {
		m.slow <- reason
	}
}
func (m *slowCount) ConnectionRefused() { m.refused.Add(1) }

// TestSlowClientCounted: a connection closed for a client that stopped
// reading is counted once, with why: its queue filled, or a write outlived
// WriteTimeout before it did; one closed for another reason (a shutdown)
// whose last frames then time out is not counted.
func TestSlowClientCounted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		queue        int
		writeTimeout time.Duration
		shutdown     bool
		want         string // "": not counted
	}{
		{"queue full", 8, time.Minute, false, "queue_full"},
		{"write timed out", 4096, 200 * time.Millisecond, false, "write_timeout"},
		// The shutdown follows the frames at once, long before WriteTimeout
		// (5 s: a loaded machine may hold the test a second or two between).
		{"closing already", 4096, 5 * time.Second, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			metrics := &slowCount{slow: make(chan string, 4)}
			s := newServer(t, serverOptions{smallBuffers: true,
				opts: ws.Options{QueueSize: tc.queue, WriteTimeout: tc.writeTimeout, Metrics: metrics}})
			cl := s.dial(dialOptions{user: "slow", paused: true, smallBuffer: true})
			resume := sync.OnceFunc(func() { close(cl.resume) })
			defer resume()
			s.waitHub("the connection to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
			text := strings.Repeat("x", 16<<10)
			for i := range 200 {
				s.hub.DeliverAll("slow", protocol.Delta("c", "m", int64(i+1)*int64(len(text)), text))
			}
			if tc.shutdown {
				for _, sub := range s.hub.Subscribers("slow") {
					sub.Close(protocol.CloseGoingAway, protocol.ReasonShutdown)
				}
			}
			if tc.want != "" {
				select {
				case got := <-metrics.slow:
					if got != tc.want {
						t.Fatalf("counted as %q, want %q", got, tc.want)
					}
				case <-time.After(testTimeout):
					t.Fatal("not counted")
				}
				resume() // a write stuck on the full socket goes on, or fails
			}
			s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
			want := int32(0)
			if tc.want != "" {
				want = 1
			}
			if n := metrics.n.Load(); n != want {
				t.Fatalf("counted %d times, want %d", n, want)
			}
		})
	}
}

// TestRepeatedResumesClosed4408: a client that stops reading and keeps
// resuming a long answer, each resume queueing its whole text again (a
// catch-up frame of 200 KiB), is closed with 4408 once the bytes queued
// pass QueueBytes, long before its 512 frames would. Before, the queue was
// bounded in frames only: it held every catch-up (up to 128 MiB) until the
// write timeout cut the connection.
func TestRepeatedResumesClosed4408(t *testing.T) {
	t.Parallel()
	metrics := &slowCount{}
	s := newServer(t, serverOptions{smallBuffers: true, opts: ws.Options{QueueBytes: 1 << 20, Metrics: metrics}})
	conv, msg := persistence.NewID(), persistence.NewID()
	s.hub.AddConversation(conv, "slow", "")
	s.hub.SetCatchUp(strings.Repeat("x", 200<<10))
	cl := s.dial(dialOptions{user: "slow", paused: true, smallBuffer: true})
	// Twelve resumes would queue 2.4 MiB (a few hundred KiB of it in the
	// sockets' buffers and the write under way at most) in 25 frames. Each
	// is handled before the next is sent: none waits behind another. Once
	// the connection is closed 4408, the resumes after are not run.
	for i := range 12 {
		cl.write(fmt.Sprintf(`{"type":"subscribe","conversationId":%q,"messageId":%q,"lastSeq":0}`, conv, msg))
		s.waitHub("the resume", func(h *hubtest.Hub) bool { return h.SubscribeCount() == i+1 || metrics.n.Load() > 0 })
	}
	if n := metrics.n.Load(); n != 1 {
		t.Fatalf("%d slow-client disconnections after 2.4 MiB of catch-ups, want 1", n)
	}
	if n := s.hub.SubscribeCount(); n == 12 {
		t.Fatalf("all %d resumes ran, also those after the connection was closed 4408", n)
	}
	close(cl.resume)
	for {
		select {
		case <-cl.frames:
			continue
		case <-cl.closed:
		case <-time.After(testTimeout):
			t.Fatal("the connection stayed open")
		}
		break
	}
	if got := websocket.CloseStatus(cl.err); got != websocket.StatusCode(protocol.CloseSlowClient) {
		t.Fatalf("close status %d, want 4408 (%v)", got, cl.err)
	}
	s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
}

// TestPingsDuringSlowSend: while a send waits on a slow store, the server
// keeps pinging, the reader keeps taking the pongs in, deltas keep
// flowing, and the healthy client is not dropped; the send then completes.
// Before, the reader ran the send itself and the writer waited for the
// pong, so the client was dropped after PingTimeout.
func TestPingsDuringSlowSend(t *testing.T) {
	t.Parallel()
	// PingTimeout is 2 s, so that a loaded machine holding the client's
	// goroutines for a second or two does not drop it (300 ms did).
	s := newServer(t, serverOptions{opts: ws.Options{PingInterval: 100 * time.Millisecond, PingTimeout: 2 * time.Second}})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	s.hub.Block()
	cl.write(`{"type":"send","id":"slow","content":"hi"}`)
	<-s.hub.Entered()
	// 30 pings at 100 ms span more than PingTimeout; after each one a
	// delta must come through at once.
	for i := range 30 {
		select {
		case <-cl.pings:
		case <-cl.closed:
			t.Fatalf("dropped during a slow send after %d pings: %v", i, cl.err)
		case <-time.After(testTimeout):
			t.Fatal("no ping")
		}
		s.hub.DeliverAll("u", protocol.Delta("c", "m", int64(i+1), "x"))
		if f := cl.expect("delta"); f.Seq != int64(i+1) {
			t.Fatalf("delta %s", f.raw)
		}
	}
	s.hub.Unblock()
	if f := cl.expect("ack"); string(f.ID) != `"slow"` {
		t.Fatalf("ack %s", f.raw)
	}
}

// TestPendingFramesBounded: frames waiting behind a slow one are bounded;
// past the bound they are refused at once, and pings are answered.
func TestPendingFramesBounded(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{MaxPendingFrames: 2}})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	s.hub.Block()
	cl.write(`{"type":"send","id":"1","content":"a"}`)
	<-s.hub.Entered()
	cl.write(`{"type":"send","id":"2","content":"b"}`)
	cl.write(`{"type":"send","id":"3","content":"c"}`)
	cl.write(`{"type":"send","id":"4","content":"d"}`)
	if f := cl.expect("error"); f.Code != protocol.CodeRateLimited || string(f.ID) != `"4"` {
		t.Fatalf("fourth frame: %s", f.raw)
	}
	cl.write(`{"type":"ping","id":"p"}`)
	cl.expect("pong")
	s.hub.Unblock()
	for _, id := range []string{`"1"`, `"2"`, `"3"`} {
		if f := cl.expect("ack"); string(f.ID) != id {
			t.Fatalf("ack %s, want id %s: frames run in order", f.raw, id)
		}
	}
}

// TestSendAfterAccountRemoved: a send on a socket whose account was
// deleted (or signed out elsewhere) since the upgrade is refused before
// the hub sees it, and the socket closes with 4401.
func TestSendAfterAccountRemoved(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "gone"})
	cl.expect("hello")
	s.revoke("gone")
	cl.write(`{"type":"send","id":"1","content":"hi"}`)
	if f := cl.expect("error"); f.Code != protocol.CodeUnauthorized {
		t.Fatalf("send after removal: %s", f.raw)
	}
	if got := cl.closeStatus(); got != websocket.StatusCode(protocol.CloseUnauthorized) {
		t.Fatalf("close status %d, want 4401", got)
	}
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}

// TestSendRefusedForDeletedAccount: a send that passed its session check
// but whose new conversation the store refused, the account being deleted
// meanwhile (hub.ErrSessionEnded), is answered as a send after the
// account's removal: an unauthorized error for the frame, then 4401. A
// send the hub refuses for another reason leaves the socket open.
func TestSendRefusedForDeletedAccount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		code  string
		close bool
	}{
		{"the account was deleted", hub.ErrSessionEnded, protocol.CodeUnauthorized, true},
		{"another refusal", protocol.Errorf(protocol.CodeUnknownModel, "no such model"), protocol.CodeUnknownModel, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, serverOptions{})
			s.hub.FailSends(tc.err)
			cl := s.dial(dialOptions{user: "u"})
			cl.expect("hello")
			cl.write(`{"type":"send","id":"new","content":"hi"}`)
			if f := cl.expect("error"); f.Code != tc.code || string(f.ID) != `"new"` {
				t.Fatalf("refused send: %s, want code %s", f.raw, tc.code)
			}
			if !tc.close {
				cl.write(`{"type":"ping","id":"p"}`)
				cl.expect("pong")
				return
			}
			if got := cl.closeStatus(); got != websocket.StatusCode(protocol.CloseUnauthorized) {
				t.Fatalf("close status %d, want 4401", got)
			}
			if got := cl.closeReason(); got != protocol.ReasonAccountDeleted {
				t.Fatalf("close reason %q, want %q (as the hub's close of a deleted account's tabs)", got, protocol.ReasonAccountDeleted)
			}
		})
	}
}

// TestNewConversationBudget: sends that create a conversation spend the
// user's conversation budget (shared with POST /api/conversations); sends
// into an existing conversation do not.
func TestNewConversationBudget(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{ConversationsPerMinute: 2})}})
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	for i, want := range []string{"ack", "ack", "error"} {
		cl.write(`{"type":"send","id":"n` + string(rune('0'+i)) + `","content":"hi"}`)
		if f := cl.expect(want); want == "error" && f.Code != protocol.CodeRateLimited {
			t.Fatalf("third new conversation: %s", f.raw)
		}
	}
	cl.write(`{"type":"send","id":"e","content":"hi","conversationId":"` + conv + `"}`)
	cl.expect("ack")
}

// TestTokenExpiryCloses4401: when the token the connection was opened with
// expires, the writer closes the socket with 4401, after the frames
// already queued, and the connection's slot comes back.
func TestTokenExpiryCloses4401(t *testing.T) {
	t.Parallel()
	// The hello and the delta come before the expiry: 3 s leaves room for
	// a loaded machine (300 ms did not).
	s := newServer(t, serverOptions{tokenLife: 3 * time.Second})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	s.hub.DeliverAll("u", protocol.Delta("c", "m", 5, "hello"))
	cl.expect("delta")
	select {
	case <-cl.closed:
	case <-time.After(testTimeout):
		t.Fatal("the connection outlived its token")
	}
	if got := websocket.CloseStatus(cl.err); got != websocket.StatusCode(protocol.CloseUnauthorized) {
		t.Fatalf("close status %d, want 4401 (%v)", got, cl.err)
	}
	s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
}

// TestHelloComesFirst: a user-wide frame the hub delivers the moment the
// connection is registered (a conversation titled in another tab) comes
// after hello, never before it.
func TestHelloComesFirst(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	s.hub.OnRegister(func(sub hub.Subscriber) {
		sub.Deliver(protocol.Conversation("updated", persistence.Conversation{ID: "c1", Title: "titled"}))
	})
	cl := s.dial(dialOptions{user: "u1"})
	cl.expect("hello")
	cl.expect("conversation")
}

// TestRepeatedRefusalsClose: more than MaxInvalidFrames invalid frames a
// minute close with 1008, more than as many frames refused as over the
// rate limit close with 4429, each with its own reason; the two are
// counted apart, so a frame refused for the rate limit after a few
// invalid ones does not close the connection as if it had been refused
// that often.
func TestRepeatedRefusalsClose(t *testing.T) {
	t.Parallel()
	const bad, ping, send = `garbage`, `{"type":"ping"}`, `{"type":"send","content":"hi"}`
	tests := []struct {
		name   string
		frames []string
		sends  bool // the send budget is the one of a burst, not the frame budget
		code   websocket.StatusCode
		reason string
	}{
		{"invalid frames", []string{bad, bad, bad, bad}, false, websocket.StatusPolicyViolation, ws.ReasonInvalidFrames},
		// The first ping takes the only frame of the burst.
		{"over the rate limit", []string{ping, ping, ping, ping, ping}, false, websocket.StatusCode(protocol.CloseRateLimited), ws.ReasonRateLimited},
		{"mixed", []string{bad, bad, bad, ping, ping, bad}, false, websocket.StatusPolicyViolation, ws.ReasonInvalidFrames},
		// The first send takes the only send of the burst; the others
		// are refused by the worker, and count as the reader's refusals.
		{"over the send budget", []string{send, send, send, send, send}, true, websocket.StatusCode(protocol.CloseRateLimited), ws.ReasonRateLimited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := limits.Options{FramesPerMinute: 4}
			if tc.sends {
				lim = limits.Options{SendsPerMinute: 4}
			}
			s := newServer(t, serverOptions{opts: ws.Options{MaxInvalidFrames: 3, Limits: limits.New(lim)}})
			cl := s.dial(dialOptions{user: "u"})
			cl.expect("hello")
			for _, f := range tc.frames {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				_ = cl.c.Write(ctx, websocket.MessageText, []byte(f)) // the last ones may meet a closed socket
				cancel()
			}
			if got := cl.closeStatus(); got != tc.code {
				t.Fatalf("close status %d, want %d", got, tc.code)
			}
			if got := cl.closeReason(); got != tc.reason {
				t.Fatalf("close reason %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestNoFramesRunAfterClose: once a connection is being closed (here with
// 4401, its session ended), the frames it sent behind the one that closed
// it are not run against the hub: a subscribe pipelined behind a refused
// send does not subscribe a signed-out session to a conversation.
func TestNoFramesRunAfterClose(t *testing.T) {
	t.Parallel()
	const conv = "0123456789abcdef01234567"
	s := newServer(t, serverOptions{})
	s.hub.AddConversation(conv, "gone", "")
	cl := s.dial(dialOptions{user: "gone"})
	cl.expect("hello")
	// The send's session check waits until the frames behind it are
	// written: otherwise the 4401 can close the socket under the test's
	// own writes, and the frames it checks were never sent.
	written := make(chan struct{})
	var release sync.Once
	defer release.Do(func() { close(written) })
	s.mu.Lock()
	s.revoked["gone"] = true
	s.rechecked = func() { <-written }
	s.mu.Unlock()
	cl.write(`{"type":"send","id":"1","content":"hi","conversationId":"` + conv + `"}`)
	cl.write(`{"type":"subscribe","id":"2","conversationId":"` + conv + `"}`)
	cl.write(`{"type":"cancel","id":"3","conversationId":"` + conv + `"}`)
	release.Do(func() { close(written) })
	if f := cl.expect("error"); f.Code != protocol.CodeUnauthorized {
		t.Fatalf("send after removal: %s", f.raw)
	}
	if got := cl.closeStatus(); got != websocket.StatusCode(protocol.CloseUnauthorized) {
		t.Fatalf("close status %d, want 4401", got)
	}
	s.waitHub("the connection detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
	if n := s.hub.SubscribeCount(); n != 0 {
		t.Fatalf("the hub got %d subscribes after the session ended", n)
	}
}

// TestInvalidUTF8Refused: a text frame that is not valid UTF-8 is refused
// as bad_frame, its id not echoed and nothing of it run. Before, its
// invalid bytes reached the hub (a content's replaced by U+FFFD, stored
// altered) and an id's were echoed raw, so the server sent a text frame
// that is not UTF-8, on which a browser fails the connection.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	for _, frame := range []string{
		"{\"type\":\"ping\",\"id\":\"a\xffb\"}",
		"{\"type\":\"send\",\"id\":\"s\",\"content\":\"hi \xc3\"}",
		"{\"type\":\"ping\",\"id\":\"x\"}\xed\xa0\x80", // a surrogate encoded as UTF-8, after the object
	} {
		cl.write(frame)
		f := cl.expect("error")
		if f.Code != protocol.CodeBadFrame || f.ID != nil || !utf8.ValidString(f.raw) {
			t.Fatalf("frame %q: got %q, want a bad_frame error without id", frame, f.raw)
		}
	}
	cl.write(`{"type":"ping","id":"alive"}`) // the connection is kept
	cl.expect("pong")
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}

// TestIDLengthInCharacters: a frame's string id may be 64 characters of
// any script, and a send's clientMessageId 64 characters (visible ASCII,
// see TestClientMessageIDRefused), as docs/protocol.md says; 65 are
// refused. Before, both were counted in bytes: 64 "é" (128 bytes) were
// refused, the id not echoed.
func TestIDLengthInCharacters(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	id64, id65 := strings.Repeat("é", 64), strings.Repeat("é", 65)
	cl.write(`{"type":"ping","id":"` + id64 + `"}`)
	if f := cl.expect("pong"); string(f.ID) != `"`+id64+`"` {
		t.Fatalf("pong %s, want the id echoed", f.raw)
	}
	cl.write(`{"type":"ping","id":"` + id65 + `"}`)
	if f := cl.expect("error"); f.Code != protocol.CodeInvalidField || f.ID != nil {
		t.Fatalf("id of 65 characters: %s", f.raw)
	}
	key64, key65 := strings.Repeat("k", 64), strings.Repeat("k", 65)
	cl.write(`{"type":"send","id":"k","content":"hi","clientMessageId":"` + key64 + `"}`)
	if f := cl.expect("ack"); string(f.ID) != `"k"` {
		t.Fatalf("send with a key of 64 characters: %s", f.raw)
	}
	cl.write(`{"type":"send","id":"l","content":"hi","clientMessageId":"` + key65 + `"}`)
	if f := cl.expect("error"); f.Code != protocol.CodeInvalidField || string(f.ID) != `"l"` {
		t.Fatalf("send with a key of 65 characters: %s", f.raw)
	}
	if sends := s.hub.Sends(); len(sends) != 1 || sends[0].ClientMessageID != key64 {
		t.Fatalf("the hub got %+v", sends)
	}
}

// TestClientMessageIDRefused: a send's or regenerate's clientMessageId
// must be visible ASCII (a UUID, as the web client sends): one of a space
// alone, or holding a space, a control or a non-ASCII character, is
// refused with invalid_field naming the field and the character, the
// frame's id echoed, and never reaches the hub.
func TestClientMessageIDRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{MaxInvalidFrames: 100}})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	conv := "0123456789abcdef01234567"
	for i, tc := range []struct{ key, char string }{
		{` `, "U+0020"},
		{`a b`, "U+0020"},
		{`\u0000`, "U+0000"},
		{`\t`, "U+0009"},
		{`clé`, "U+00E9"},
	} {
		for _, frame := range []string{
			`{"type":"send","id":%d,"content":"hi","clientMessageId":"%s"}`,
			`{"type":"regenerate","id":%d,"conversationId":"` + conv + `","clientMessageId":"%s"}`,
		} {
			cl.write(fmt.Sprintf(frame, i, tc.key))
			f := cl.expect("error")
			if f.Code != protocol.CodeInvalidField || string(f.ID) != fmt.Sprint(i) ||
				!strings.Contains(string(f.Message), "clientMessageId") || !strings.Contains(string(f.Message), tc.char) {
				t.Fatalf("key %q: %s, want invalid_field naming clientMessageId and %s", tc.key, f.raw, tc.char)
			}
		}
	}
	cl.write(`{"type":"send","id":"ok","content":"hi","clientMessageId":"0b8e8a4e-1f4c-4f0e-9a57-3c1d2b9e6f10"}`)
	cl.expect("ack")
	if n := len(s.hub.Sends()); n != 1 {
		t.Fatalf("the hub got %d sends, want 1 (the valid key's)", n)
	}
}

// TestLoneSurrogateRefused: a frame holding the escape of half a UTF-16
// surrogate pair alone ("\ud800"), which decoding takes as U+FFFD, is
// refused as a frame that is not UTF-8 is, and never reaches the hub:
// invalid_field naming the field (the frame's id echoed unless it holds
// it), bad_frame when a key holds it. A pair is text.
func TestLoneSurrogateRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	for _, tc := range []struct{ frame, code, id, msg string }{
		{`{"type":"send","id":"s","content":"a\ud800b"}`, protocol.CodeInvalidField, `"s"`, `content must be valid text: \\ud800 is half`},
		{`{"type":"send","id":"s","content":"\\\udc00"}`, protocol.CodeInvalidField, `"s"`, `content must be valid text: \\udc00 is half`},
		{`{"type":"send","id":"\ud800","content":"x"}`, protocol.CodeInvalidField, ``, `id must be valid text`},
		{`{"type":"send","id":"k","content":"x","\ud83d":1}`, protocol.CodeBadFrame, `"k"`, `a frame must be valid text`},
	} {
		cl.write(tc.frame)
		f := cl.expect("error")
		if f.Code != tc.code || string(f.ID) != tc.id || !strings.Contains(string(f.Message), tc.msg) {
			t.Fatalf("%s: %s, want %s naming %q, id %s", tc.frame, f.raw, tc.code, tc.msg, tc.id)
		}
	}
	cl.write(`{"type":"send","id":"p","content":"\ud83d\ude00 \\ud800"}`)
	cl.expect("ack")
	if sends := s.hub.Sends(); len(sends) != 1 || sends[0].Content != `😀 \ud800` {
		t.Fatalf("the hub got %+v, want the pair's send alone", sends)
	}
}
