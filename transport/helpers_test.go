package transport_test

import (
	"bytes"
	"chatd/internal/syncbuf"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"chatd/llm"
	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/transport"
	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/limits"
)

// testSecret signs the test server's tokens.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// catalog is a tiny real llm.Catalog: a fixed list.
type catalog []llm.ModelInfo

func (c catalog) Models(context.Context) ([]llm.ModelInfo, error) { return c, nil }

var testModels = catalog{
	{ID: "demo", Name: "Demo", Demo: true, Default: true},
	{ID: "gpt-test", Name: "GPT test"},
}

// env is one test server over a real SQLite file.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	store  *sqlite.Store
	logs   *syncBuffer
	live   *recordingLive
	health *api.Health
	// routes are the router's routes (method and path).
	routes gin.RoutesInfo
}

type envOptions struct {
	accounts auth.AccountOptions
	router   func(*transport.RouterOptions)
	// creations is the budget of new conversations; tests create many
	// conversations, so it defaults to one that never runs out.
	creations api.CreationBudget
	// listener, when set, wraps the server's listener (small socket buffers).
	listener func(net.Listener) net.Listener
}

// newEnv starts a server; tweak adjusts the options before it starts.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, logs: &syncBuffer{}, live: &recordingLive{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: logger})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	e.store = store

	authn, err := auth.NewAuthenticator(store, auth.Options{Secret: testSecret})
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	if o.accounts.BcryptCost == 0 {
		o.accounts.BcryptCost = bcrypt.MinCost
	}
	o.accounts.Logger = logger
	accounts, err := auth.NewAccounts(store, authn, o.accounts)
	if err != nil {
		t.Fatalf("accounts: %v", err)
	}
	e.health = api.NewHealth(store, 0)
	if o.creations == nil {
		o.creations = limits.New(limits.Options{ConversationsPerMinute: 1 << 20})
	}
	registry := prometheus.NewRegistry()
	opts := transport.RouterOptions{
		Logger:   logger,
		Auth:     authn,
		Accounts: accounts,
		Conversations: api.NewConversations(store, api.ConversationOptions{Live: e.live, Catalog: testModels,
			Creations: o.creations, Logger: logger}),
		Models: api.NewModels(testModels),
		Health: e.health,
		Metrics: transport.MetricsOptions{Registerer: registry, Gatherer: registry,
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}
	if o.router != nil {
		o.router(&opts)
	}
	r, err := transport.NewRouter(opts)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	e.routes = r.Routes()
	e.srv = httptest.NewUnstartedServer(r)
	if o.listener != nil {
		e.srv.Listener = o.listener(e.srv.Listener)
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// response is an answer, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// errorCode is the error.code of a JSON error answer.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON).
func (e *env) do(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// expect fails the test unless r has the status (and, for errors, the code).
func expect(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	if code != "" {
		if got := r.errorCode(t); got != code {
			t.Fatalf("%s: error code %q, want %q", what, got, code)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: Content-Type %q, want JSON", what, ct)
		}
	}
}

// user is a registered account.
type user struct {
	id, email, password, token string
}

// register creates an account and returns it with its token.
func (e *env) register(name string) user {
	e.t.Helper()
	u := user{email: strings.ToLower(name) + "@example.com", password: "correct horse " + name}
	r := e.do("POST", "/api/auth/register", "", map[string]string{"email": u.email, "password": u.password, "name": name})
	expect(e.t, "register "+name, r, http.StatusCreated, "")
	var s auth.Session
	if err := json.Unmarshal(r.body, &s); err != nil {
		e.t.Fatal(err)
	}
	u.id, u.token = s.User.ID, s.Token
	return u
}

// createConversation makes a conversation over the API.
func (e *env) createConversation(u user, title string) persistence.Conversation {
	e.t.Helper()
	r := e.do("POST", "/api/conversations", u.token, map[string]string{"title": title})
	expect(e.t, "create conversation", r, http.StatusCreated, "")
	var body struct{ Conversation persistence.Conversation }
	if err := json.Unmarshal(r.body, &body); err != nil {
		e.t.Fatal(err)
	}
	return body.Conversation
}

// insertMessage stores a message directly in the store.
func (e *env) insertMessage(owner user, convID, parentID string, role persistence.Role, content string) persistence.Message {
	e.t.Helper()
	m := persistence.Message{ConversationID: convID, OwnerID: owner.id, ParentID: parentID, Role: role,
		Content: content, Status: persistence.StatusComplete}
	if role == persistence.RoleAssistant {
		m.Model = "demo"
	}
	if err := e.store.InsertMessage(context.Background(), &m); err != nil {
		e.t.Fatalf("insert message: %v", err)
	}
	return m
}

// recordingLive is a real api.Live that records what the API told it.
type recordingLive struct {
	mu      sync.Mutex
	active  map[string]string
	events  []string // "cancel <conv>", "<action> <conv>"
	changed []persistence.Conversation
}

func (l *recordingLive) ActiveAnswer(_ context.Context, _, conversationID string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active[conversationID]
}

func (l *recordingLive) CancelConversation(ownerID, conversationID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, "cancel "+conversationID)
}

func (l *recordingLive) ConversationChanged(ownerID, action string, c persistence.Conversation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, action+" "+c.ID)
	l.changed = append(l.changed, c)
}

func (l *recordingLive) setActive(conv, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active == nil {
		l.active = map[string]string{}
	}
	l.active[conv] = msg
}

func (l *recordingLive) eventList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// syncBuffer is a goroutine-safe log sink that reads its JSON records.
type syncBuffer struct{ syncbuf.Buffer }

// lines returns the JSON log records written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}
