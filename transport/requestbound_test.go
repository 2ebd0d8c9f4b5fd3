package transport_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"chatd/hub"
	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/transport"
	"chatd/transport/api"
	"chatd/transport/auth"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// deadlines records the deadline of the context each store call got, and
// when the token check's read was done.
type deadlines struct {
	mu        sync.Mutex
	check     time.Time // the token check's
	route     time.Time // the route's
	checkDone time.Time
}

func (d *deadlines) checked() {
	d.mu.Lock()
	d.checkDone = time.Now()
	d.mu.Unlock()
}

func (d *deadlines) set(field *time.Time, ctx context.Context) {
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	*field = dl
	d.mu.Unlock()
}

func (d *deadlines) get() (check, route, checkDone time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.check, d.route, d.checkDone
}

// slowTokenCheck is a store slow to read a token version: it answers
// after takes, within the check's bound.
type slowTokenCheck struct {
	*sqlite.Store
	takes time.Duration
	seen  *deadlines
}

func (s slowTokenCheck) TokenVersion(ctx context.Context, userID string) (int64, error) {
	s.seen.set(&s.seen.check, ctx)
	select {
	case <-time.After(s.takes): // a slow store, not a synchronisation
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer s.seen.checked()
	return s.Store.TokenVersion(ctx, userID)
}

// hangingRoute is a conversation store that does not answer the routes'
// reads: each waits for its context to end.
type hangingRoute struct {
	*sqlite.Store
	seen *deadlines
}

func (s hangingRoute) ListConversations(ctx context.Context, _ string, _ persistence.ListQuery) (persistence.ConversationPage, error) {
	s.seen.set(&s.seen.route, ctx)
	<-ctx.Done()
	return persistence.ConversationPage{}, ctx.Err()
}

func (s hangingRoute) Conversation(ctx context.Context, _, _ string) (persistence.Conversation, error) {
	s.seen.set(&s.seen.route, ctx)
	<-ctx.Done()
	return persistence.Conversation{}, ctx.Err()
}

// hangingCancel is a hub whose cancel and send do not answer (they read
// the store): each waits for its context to end.
type hangingCancel struct {
	*hubtest.Hub
	seen *deadlines
}

func (h hangingCancel) CancelAnswer(ctx context.Context, _, _, _ string) error {
	h.seen.set(&h.seen.route, ctx)
	<-ctx.Done()
	return ctx.Err()
}

func (h hangingCancel) ActiveAnswer(ctx context.Context, _, _ string) string {
	h.seen.set(&h.seen.route, ctx)
	<-ctx.Done()
	return ""
}

func (h hangingCancel) Send(ctx context.Context, _ hub.Subscriber, _ string, _ hub.SendRequest) (hub.Result, error) {
	h.seen.set(&h.seen.route, ctx)
	<-ctx.Done()
	return hub.Result{}, ctx.Err()
}

// TestOneRequestTimeoutPerRequest: CHATD_REQUEST_TIMEOUT bounds a request
// as a whole. A slow token check (half the bound) followed by a route
// whose store (or hub) does not answer is answered 503 once the bound has
// passed since the request started, the route getting what the check
// left (the two share one deadline), where it used to get the whole bound
// again after the check and answer after one and a half bounds, past a
// proxy sized for one.
func TestOneRequestTimeoutPerRequest(t *testing.T) {
	t.Parallel()
	// Half of the bound left for the route: the check must end within it, and
	// a route bounded on its own answers half a bound later than one sharing
	// its deadline; 2.5 s each way is room for a loaded machine, which can
	// hold a goroutine for a second or two (2 s, 1 s each way, was not).
	const bound = 5 * time.Second
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int // 0: 503 unavailable
	}{
		{"list", http.MethodGet, "/api/conversations", nil, 0},
		{"one conversation", http.MethodGet, "/api/conversations/" + persistence.NewID(), nil, 0},
		{"cancel (SSE)", http.MethodPost, "/api/conversations/" + persistence.NewID() + "/cancel", nil, 0},
		{"send (SSE)", http.MethodPost, "/api/conversations/" + persistence.NewID() + "/messages", map[string]string{"content": "hi"}, 0},
		// The running answer's lookup that cannot say counts as nothing running.
		{"resume (SSE)", http.MethodGet, "/api/conversations/" + persistence.NewID() + "/stream", nil, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := &deadlines{}
			srv := boundEnv(t, bound, slowTokenCheck{takes: bound / 2, seen: seen}, hangingRoute{seen: seen})
			u := srv.register("bounded")
			r := srv.do(tc.method, tc.path, u.token, tc.body)
			answered := time.Now()
			if tc.status != 0 {
				expect(t, tc.name, r, tc.status, "")
			} else {
				expect(t, tc.name, r, http.StatusServiceUnavailable, "unavailable")
				if r.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			check, route, checkDone := seen.get()
			if check.IsZero() || route.IsZero() {
				t.Fatalf("deadlines: check %v, route %v; want both bounded (the check done within its bound)", check, route)
			}
			if route.After(check) {
				t.Errorf("the route's deadline is %v after the token check's: each waited a bound of its own", route.Sub(check))
			}
			// A route bounded on its own answers a whole bound after the
			// check at the earliest; one sharing the check's deadline,
			// half a bound before that.
			if answered.After(checkDone.Add(bound)) {
				t.Errorf("answered %v after the token check: the route waited a whole bound (%v) of its own", answered.Sub(checkDone), bound)
			}
		})
	}
}

// boundEnv starts a router whose token check reads users through check
// and whose conversation routes read through route, both over one SQLite
// store, with CHATD_REQUEST_TIMEOUT bound for both.
func boundEnv(t *testing.T, bound time.Duration, check slowTokenCheck, route hangingRoute) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}, live: &recordingLive{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	store, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: logger})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	e.store, check.Store, route.Store = store, store, store
	authn, err := auth.NewAuthenticator(check, auth.Options{Secret: testSecret, CheckTimeout: bound})
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	accounts, err := auth.NewAccounts(store, authn, auth.AccountOptions{BcryptCost: bcrypt.MinCost, Logger: logger, RequestTimeout: bound})
	if err != nil {
		t.Fatalf("accounts: %v", err)
	}
	registry := prometheus.NewRegistry()
	r, err := transport.NewRouter(transport.RouterOptions{
		Logger:   logger,
		Auth:     authn,
		Accounts: accounts,
		Conversations: api.NewConversations(route, api.ConversationOptions{Live: e.live, Catalog: testModels,
			Creations: limits.New(limits.Options{}), Logger: logger, RequestTimeout: bound}),
		Models:  api.NewModels(testModels),
		Health:  api.NewHealth(store, 0),
		Metrics: transport.MetricsOptions{Registerer: registry, Gatherer: registry},
		Register: func(r transport.Routes) {
			sse.NewHandler(sse.Options{Hub: hangingCancel{Hub: hubtest.New(), seen: route.seen},
				Logger: logger, RequestTimeout: bound}).Routes(r.Authed)
		},
	})
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

// TestLateBodyIs408: a body that arrives whole only after
// CHATD_REQUEST_TIMEOUT has passed since the request began (within the
// body read timeout) is answered 408 request_timeout, with the time the
// body took in the request's log line, on a conversation route, an
// account route and an SSE route alike. Before, the route went on with no
// time left: 503 "the server did not answer in time" with Retry-After and
// a warning blaming the database.
func TestLateBodyIs408(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	for _, tc := range []struct {
		name, path string
		authed     bool
	}{
		{"create a conversation", "/api/conversations", true},
		{"sign in", "/api/auth/login", false},
		{"send (SSE)", "/api/conversations/" + persistence.NewID() + "/messages", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := boundEnv(t, bound, slowTokenCheck{seen: &deadlines{}}, hangingRoute{seen: &deadlines{}})
			u := srv.register("late")
			body := map[string]string{
				"/api/conversations": `{"title":"late"}`,
				"/api/auth/login":    `{"email":"` + u.email + `","password":"` + u.password + `"}`,
			}[tc.path]
			if body == "" {
				body = `{"content":"hi"}`
			}
			pr, pw := io.Pipe()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.srv.URL+tc.path, pr)
			req.ContentLength = int64(len(body))
			req.Header.Set("Content-Type", "application/json")
			if tc.authed {
				req.Header.Set("Authorization", "Bearer "+u.token)
			}
			go func() {
				_, _ = pw.Write([]byte(body[:1]))
				// The rest once the request's time has passed, well
				// within the body read timeout (30 s).
				select {
				case <-time.After(bound + bound/2):
				case <-ctx.Done():
				}
				_, _ = pw.Write([]byte(body[1:]))
				_ = pw.Close()
			}()
			res, err := srv.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := response{status: res.StatusCode, header: res.Header, body: data}
			expect(t, tc.name, r, http.StatusRequestTimeout, "request_timeout")
			if r.header.Get("Retry-After") != "" {
				t.Error("408 with Retry-After")
			}
			// The request's line is written as its handler returns, which
			// may come just after the answer reached the client.
			for logged := time.Now(); !strings.Contains(srv.logs.String(), "the request body took "); time.Sleep(10 * time.Millisecond) {
				if time.Since(logged) > 10*time.Second {
					t.Fatalf("no log line says how long the body took:\n%s", srv.logs.String())
				}
			}
		})
	}
}
