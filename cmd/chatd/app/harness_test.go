package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.mongodb.org/mongo-driver/v2/event"
	"golang.org/x/crypto/bcrypt"

	"chatd/hub"
	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
	"chatd/persistence/counting"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/sqlite"
	"chatd/transport/auth"
)

// testTimeout bounds every wait of a live-channel test.
const testTimeout = 30 * time.Second

// env is a real chatd server (httptest) on a real store, talking to the
// real fake OpenAI server.
type env struct {
	t     *testing.T
	app   *App
	srv   *httptest.Server
	fake  *fakeai.TestServer
	store *counting.Store
	// mongoWrites counts write commands seen by the MongoDB driver (Mongo envs only).
	mongoWrites atomic.Int64
	closeOnce   sync.Once
}

type envOptions struct {
	mongo bool // the MongoDB store on FerretDB (ferret.Start) instead of SQLite
	// smallBuffers shrinks the server's socket send buffers, so a client
	// that stops reading blocks the server's writes quickly.
	smallBuffers bool
	fake         fakeai.Options        // the fake upstream
	model        func(*openai.Options) // tweak the upstream client
	tweak        func(*Config)         // tweak the app
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t}
	e.fake = fakeai.Start(t, o.fake)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var inner persistence.Store
	if o.mongo {
		uri := ferret.Start(t)
		mon := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
			switch ev.CommandName {
			case "insert", "update", "delete", "findAndModify":
				e.mongoWrites.Add(1)
			}
		}}
		s, err := mongo.Open(ctx, mongo.Options{URI: uri, Monitor: mon, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("open mongo store: %v", err)
		}
		inner = s
	} else {
		s, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
		if err != nil {
			t.Fatalf("open sqlite store: %v", err)
		}
		inner = s
	}
	e.store = counting.Wrap(inner)
	// The upstream timeouts are long enough that no stall of a loaded
	// machine under -race (a goroutine descheduled for a second or two)
	// reaches them; a test of a timeout sets its own (model).
	mo := openai.Options{APIKey: "test-key", BaseURL: e.fake.URL, RetryBase: 20 * time.Millisecond,
		RetryMax: 100 * time.Millisecond, FirstTokenTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
	if o.model != nil {
		o.model(&mo)
	}
	cfg := Config{
		Logger: testLogger(t),
		Store:  e.store,
		Model:  openai.New(mo),
		Titler: func(_ context.Context, _ llm.ModelInfo, prompt, _ string) string {
			return "Title: " + firstWords(prompt)
		},
		Auth:     auth.Options{Secret: []byte(strings.Repeat("s", 32))},
		Accounts: auth.AccountOptions{BcryptCost: bcrypt.MinCost},
		Hub:      hub.Options{CoalesceInterval: 10 * time.Millisecond},
	}
	cfg.Writer.Interval = 50 * time.Millisecond
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	e.app = app
	e.srv = httptest.NewUnstartedServer(app.Handler())
	if o.smallBuffers {
		e.srv.Listener = smallBufferListener{e.srv.Listener}
	}
	e.srv.Start()
	t.Cleanup(e.close)
	return e
}

// close shuts the server down as the binary does, then the store.
func (e *env) close() {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := e.app.Shutdown(ctx); err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
		e.srv.Close()
		if err := e.store.Close(ctx); err != nil {
			e.t.Errorf("close store: %v", err)
		}
	})
}

// smallBufferListener gives accepted connections a small send buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// smallReadBufferClient dials with a small socket receive buffer.
func smallReadBufferClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// testLogger sends logs at warning and above to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(ferret.NewTestHandler(t, slog.LevelWarn))
}

func firstWords(s string) string {
	f := strings.Fields(fakeai.StripMarkers(s))
	return strings.Join(f[:min(3, len(f))], " ")
}

// user is a registered account.
type user struct {
	ID    string
	Token string
}

var userSeq atomic.Int64

func (e *env) register(t *testing.T) user {
	t.Helper()
	n := userSeq.Add(1)
	var out struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	e.rest(t, "", http.MethodPost, "/api/auth/register",
		map[string]string{"email": fmt.Sprintf("user%d@example.com", n), "password": "correct horse battery", "name": fmt.Sprintf("User %d", n)},
		http.StatusCreated, &out)
	return user{ID: out.User.ID, Token: out.Token}
}

// rest calls the REST API and decodes the answer into out (when not nil).
func (e *env) rest(t *testing.T, token, method, path string, body any, want int, out any) http.Header {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return res.Header
}

// thread is GET /api/conversations/:id.
type thread struct {
	Conversation    persistence.Conversation `json:"conversation"`
	Messages        []persistence.Message    `json:"messages"`
	ActiveMessageID string                   `json:"activeMessageId"`
}

func (e *env) thread(t *testing.T, u user, convID string) thread {
	t.Helper()
	var th thread
	e.rest(t, u.Token, http.MethodGet, "/api/conversations/"+convID, nil, http.StatusOK, &th)
	return th
}

func (th thread) message(t *testing.T, id string) persistence.Message {
	t.Helper()
	for _, m := range th.Messages {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %s not in conversation (%d messages)", id, len(th.Messages))
	return persistence.Message{}
}

// frame is any server frame, decoded loosely for assertions.
type frame struct {
	Type           string                    `json:"type"`
	ID             json.RawMessage           `json:"id"`
	ConversationID string                    `json:"conversationId"`
	UserMessageID  string                    `json:"userMessageId"`
	MessageID      string                    `json:"messageId"`
	Seq            int64                     `json:"seq"`
	RSeq           int64                     `json:"rseq"`
	Omitted        int                       `json:"omittedMessages"`
	Text           string                    `json:"text"`
	Status         string                    `json:"status"`
	FinishReason   string                    `json:"finishReason"`
	Usage          *persistence.Usage        `json:"usage"`
	Code           string                    `json:"code"`
	Action         string                    `json:"action"`
	Conversation   *persistence.Conversation `json:"conversation"`
	RawMessage     json.RawMessage           `json:"message"` // an object in message frames, a string in error frames
	RawError       json.RawMessage           `json:"error"`
	UserID         string                    `json:"userId"`
	Protocol       string                    `json:"protocol"`
	CloseCode      int                       `json:"closeCode"` // closed events
	Reason         string                    `json:"reason"`
	raw            string
}

// stored is the message of a message frame.
func (f frame) stored(t *testing.T) persistence.Message {
	t.Helper()
	var m persistence.Message
	if err := json.Unmarshal(f.RawMessage, &m); err != nil {
		t.Fatalf("message frame %s: %v", f.raw, err)
	}
	return m
}

// doneError is the error of a done frame.
func (f frame) doneError() (code, message string) {
	var b struct{ Code, Message string }
	_ = json.Unmarshal(f.RawError, &b)
	return b.Code, b.Message
}

// client is one WebSocket tab. A goroutine reads every frame into frames.
type client struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan frame
	closed chan struct{}
	err    error // why reading ended, after closed
	paused atomic.Bool
	resume chan struct{}
}

func (e *env) dial(t *testing.T, u user) *client {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	return e.dialWith(t, &websocket.DialOptions{HTTPHeader: h})
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws" }

func (e *env) dialWith(t *testing.T, opts *websocket.DialOptions) *client {
	t.Helper()
	cl := e.dialSilent(t, opts)
	if f := cl.next(); f.Type != "hello" {
		t.Fatalf("first frame %s, want hello", f.raw)
	}
	return cl
}

// dialSilent opens a WebSocket without waiting for its hello: for a
// connection the server closes before its session is confirmed, which
// gets no frame at all.
func (e *env) dialSilent(t *testing.T, opts *websocket.DialOptions) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, res, err := websocket.Dial(ctx, e.wsURL(), opts)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	c.SetReadLimit(16 << 20)
	cl := &client{t: t, c: c, frames: make(chan frame, 100_000), closed: make(chan struct{}), resume: make(chan struct{})}
	go cl.read()
	t.Cleanup(func() { c.CloseNow() })
	return cl
}

func (cl *client) read() {
	defer close(cl.closed)
	for {
		if cl.paused.Load() {
			<-cl.resume
		}
		_, data, err := cl.c.Read(context.Background())
		if err != nil {
			cl.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			cl.err = fmt.Errorf("undecodable frame %q: %w", data, err)
			return
		}
		f.raw = string(data)
		cl.frames <- f
	}
}

// write sends one frame (a value encoded as JSON, or raw text).
func (cl *client) write(v any) {
	cl.t.Helper()
	data, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			cl.t.Fatalf("encode frame: %v", err)
		}
		data = string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		cl.t.Fatalf("write frame: %v", err)
	}
}

// next returns the next frame, failing the test after testTimeout.
func (cl *client) next() frame {
	cl.t.Helper()
	select {
	case f := <-cl.frames:
		return f
	case <-cl.closed:
		select {
		case f := <-cl.frames:
			return f
		default:
		}
		cl.t.Fatalf("connection ended while waiting for a frame: %v", cl.err)
	case <-time.After(testTimeout):
		cl.t.Fatalf("no frame within %s", testTimeout)
	}
	return frame{}
}

// until returns the frames up to and including the first one that matches.
func (cl *client) until(match func(frame) bool) []frame {
	cl.t.Helper()
	var got []frame
	for {
		f := cl.next()
		got = append(got, f)
		if match(f) {
			return got
		}
	}
}

// live drops the user-wide conversation frames, which arrive at any time.
func live(frames []frame) []frame {
	var out []frame
	for _, f := range frames {
		if f.Type != "conversation" {
			out = append(out, f)
		}
	}
	return out
}

// expect returns the next frame, which must be of type typ; user-wide
// conversation frames, which arrive at any time, are skipped unless typ is
// "conversation".
func (cl *client) expect(typ string) frame {
	cl.t.Helper()
	f := cl.next()
	for f.Type == "conversation" && typ != "conversation" {
		f = cl.next()
	}
	if f.Type != typ {
		cl.t.Fatalf("got frame %s, want type %s", f.raw, typ)
	}
	return f
}

// closeStatus waits for the connection to end and returns its close code.
func (cl *client) closeStatus() websocket.StatusCode {
	cl.t.Helper()
	select {
	case <-cl.closed:
		return websocket.CloseStatus(cl.err)
	case <-time.After(testTimeout):
		cl.t.Fatalf("connection still open after %s", testTimeout)
	}
	return -1
}

// closeReason waits for the connection to end and returns its close
// reason.
func (cl *client) closeReason() string {
	cl.t.Helper()
	cl.closeStatus()
	var ce websocket.CloseError
	if errors.As(cl.err, &ce) {
		return ce.Reason
	}
	return ""
}

// quiet fails if a frame other than a user-wide conversation frame arrives within d.
func (cl *client) quiet(d time.Duration) {
	cl.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-cl.frames:
			if f.Type != "conversation" {
				cl.t.Fatalf("unexpected frame %s", f.raw)
			}
		case <-deadline:
			return
		}
	}
}

func isDone(id string) func(frame) bool {
	return func(f frame) bool { return f.Type == "done" && f.MessageID == id }
}

// answer joins the deltas of one answer, checking that each continues the
// previous one exactly (seq = previous seq + byte length of text).
func answer(t *testing.T, frames []frame, messageID string) (text string, done frame) {
	t.Helper()
	var b strings.Builder
	for _, f := range frames {
		if f.MessageID != messageID {
			continue
		}
		switch f.Type {
		case "delta":
			if want := int64(b.Len() + len(f.Text)); f.Seq != want {
				for _, g := range frames {
					t.Log(g.raw)
				}
				t.Fatalf("delta seq %d after %d bytes + %d: gap or duplicate (%s)", f.Seq, b.Len(), len(f.Text), f.raw)
			}
			b.WriteString(f.Text)
		case "done":
			if f.Seq != int64(b.Len()) {
				for _, g := range frames {
					t.Log(g.raw)
				}
				t.Fatalf("done seq %d, but %d bytes were delivered", f.Seq, b.Len())
			}
			return b.String(), f
		}
	}
	return b.String(), frame{}
}

// sendFrame is a send frame.
func sendFrame(id, convID, content string) map[string]any {
	f := map[string]any{"type": "send", "id": id, "content": content}
	if convID != "" {
		f["conversationId"] = convID
	}
	return f
}

// start sends a prompt in a new conversation and returns its ack.
func (cl *client) start(content string) frame {
	cl.t.Helper()
	cl.write(sendFrame("s1", "", content))
	for {
		f := cl.next()
		switch f.Type {
		case "ack":
			return f
		case "error":
			cl.t.Fatalf("send refused: %s", f.raw)
		}
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodeFrame(t *testing.T, s string) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("undecodable frame %q: %v", s, err)
	}
	f.raw = s
	return f
}
