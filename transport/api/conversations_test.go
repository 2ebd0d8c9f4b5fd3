package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/transport/api"
	"chatd/transport/auth"
)

// apiEnv serves the conversation routes over a real SQLite store; the
// X-User header names the signed-in user.
type apiEnv struct {
	store *sqlite.Store
	srv   *httptest.Server
}

func newAPIEnv(t *testing.T, opts api.ConversationOptions) *apiEnv {
	t.Helper()
	return newAPIEnvWith(t, opts, nil)
}

// newAPIEnvWith is newAPIEnv with the routes' store wrapped by wrap (when
// not nil) and set up by setup (when not nil) before they serve.
func newAPIEnvWith(t *testing.T, opts api.ConversationOptions, wrap func(api.ConversationStore) api.ConversationStore, setup ...func(*api.Conversations)) *apiEnv {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	gin.SetMode(gin.TestMode)
	r := gin.New()
	authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")}) })
	opts.Logger = quiet
	var store api.ConversationStore = s
	if wrap != nil {
		store = wrap(s)
	}
	h := api.NewConversations(store, opts)
	for _, fn := range setup {
		fn(h)
	}
	h.Routes(authed)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &apiEnv{store: s, srv: srv}
}

// get answers GET path as user.
func (e *apiEnv) get(t *testing.T, user, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("X-User", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// user stores a user and returns their id.
func (e *apiEnv) user(t *testing.T) string {
	t.Helper()
	u := persistence.User{Email: persistence.NewID() + "@example.test", Name: "U", PasswordHash: "x"}
	if err := e.store.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// conversation stores a conversation of owner with n messages, each the
// reply of the one before, and returns it with the message ids oldest first.
func (e *apiEnv) conversation(t *testing.T, owner string, contents ...string) (persistence.Conversation, []string) {
	t.Helper()
	ctx := t.Context()
	c := persistence.Conversation{OwnerID: owner, Title: "paged"}
	if err := e.store.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	var ids []string
	parent := ""
	for i, text := range contents {
		role := persistence.RoleUser
		if i%2 == 1 {
			role = persistence.RoleAssistant
		}
		m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: parent, Role: role,
			Content: text, Status: persistence.StatusComplete}
		if err := e.store.InsertMessage(ctx, &m); err != nil {
			t.Fatal(err)
		}
		parent = m.ID
		ids = append(ids, m.ID)
	}
	return c, ids
}

type pageBody struct {
	Messages []persistence.Message `json:"messages"`
	HasMore  *bool                 `json:"hasMore"`
	Error    struct{ Code string } `json:"error"`
}

func ids(ms []persistence.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestMessagePaging (issue 10, item 12): GET /api/conversations/:id gives
// the newest messages and hasMore; /messages?before= pages back, oldest
// first; bad or foreign ids answer like unknown ones.
func TestMessagePaging(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	contents := make([]string, 7)
	for i := range contents {
		contents[i] = fmt.Sprintf("message %d", i)
	}
	c, all := e.conversation(t, owner, contents...)
	base := "/api/conversations/" + c.ID
	cases := []struct {
		name, path string
		status     int
		want       []string
		more       bool
		code       string
	}{
		{"small conversation whole", base, 200, all, false, ""},
		{"newest page", base + "?limit=3", 200, all[4:], true, ""},
		{"older page", base + "/messages?before=" + all[4] + "&limit=3", 200, all[1:4], true, ""},
		{"oldest page", base + "/messages?before=" + all[1] + "&limit=3", 200, all[:1], false, ""},
		{"before the first", base + "/messages?before=" + all[0], 200, []string{}, false, ""},
		{"messages without before", base + "/messages?limit=2", 200, all[5:], true, ""},
		{"limit 0", base + "?limit=0", 400, nil, false, "invalid_field"},
		{"limit too large", base + "/messages?limit=501", 400, nil, false, "invalid_field"},
		{"malformed before", base + "/messages?before=nope", 400, nil, false, "invalid_field"},
		{"unknown before", base + "/messages?before=" + persistence.NewID(), 404, nil, false, "not_found"},
		{"unknown conversation", "/api/conversations/" + persistence.NewID() + "/messages", 404, nil, false, "not_found"},
	}
	for _, tc := range cases {
		res, body := e.get(t, owner, tc.path)
		if res.StatusCode != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.name, res.StatusCode, body, tc.status)
		}
		var p pageBody
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.status != 200 {
			if p.Error.Code != tc.code {
				t.Fatalf("%s: code %q, want %q", tc.name, p.Error.Code, tc.code)
			}
			continue
		}
		if got := ids(p.Messages); strings.Join(got, ",") != strings.Join(tc.want, ",") || p.HasMore == nil || *p.HasMore != tc.more {
			t.Fatalf("%s: %v hasMore %v, want %v hasMore %v", tc.name, got, p.HasMore, tc.want, tc.more)
		}
	}
	// Another user's conversation and message answer like unknown ones.
	for _, path := range []string{base, base + "/messages", base + "/messages?before=" + all[3]} {
		if res, body := e.get(t, persistence.NewID(), path); res.StatusCode != 404 {
			t.Fatalf("another user's %s: %d %s", path, res.StatusCode, body)
		}
	}
}

// TestSearchRate (issue 10, item 12): searches beyond the per-user rate get
// 429 with Retry-After; plain listing and other users are not affected.
func TestSearchRate(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: 3})
	a, b := persistence.NewID(), persistence.NewID()
	for i := range 3 {
		if res, body := e.get(t, a, "/api/conversations?q=word"); res.StatusCode != 200 {
			t.Fatalf("search %d: %d %s", i, res.StatusCode, body)
		}
	}
	res, body := e.get(t, a, "/api/conversations?q=word")
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("4th search: %d (Retry-After %q) %s, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if res, _ := e.get(t, a, "/api/conversations"); res.StatusCode != 200 {
		t.Fatalf("listing without q after the limit: %d", res.StatusCode)
	}
	if res, _ := e.get(t, b, "/api/conversations?q=word"); res.StatusCode != 200 {
		t.Fatalf("another user's search: %d", res.StatusCode)
	}
}

// TestMarkdownEscapesControls (issue 10, item 13): NUL, BEL, ESC and other
// control characters reach a Markdown export as visible control pictures,
// never raw; tab, newline and CRLF line ends stay text.
func TestMarkdownEscapesControls(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c, _ := e.conversation(t, owner, "nul\x00 bel\x07 esc\x1b[31m red", "del\x7f c1\u0085 tab\tend\r\nnext line")
	_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
	md := string(body)
	for _, want := range []string{"nul␀ bel␇ esc␛[31m red", `del␡ c1\u0085 tab` + "\tend\nnext line"} {
		if !strings.Contains(md, want) {
			t.Fatalf("export lacks %q:\n%q", want, md)
		}
	}
	for _, r := range md {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Fatalf("export holds a raw control character %U:\n%q", r, md)
		}
	}
	// The JSON export keeps the text exact.
	_, body = e.get(t, owner, "/api/conversations/"+c.ID+"/export?format=json")
	var doc struct{ Messages []persistence.Message }
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Messages) != 2 || doc.Messages[0].Content != "nul\x00 bel\x07 esc\x1b[31m red" {
		t.Fatalf("json export %v: %s", err, body)
	}
}

// budgetsFunc is a limits.Budgets from a function.
type budgetsFunc func(budget, user string, perMinute int) (time.Duration, bool, error)

func (f budgetsFunc) TakeBudget(_ context.Context, budget, user string, perMinute int) (time.Duration, bool, error) {
	return f(budget, user, perMinute)
}

func (f budgetsFunc) GiveBudget(context.Context, string, string, int) error { return nil }

// TestSearchRateShared: with a cluster's budgets, a search the process
// allows also spends the user's cluster-wide search budget: the cluster's
// refusal is a 429 with its wait, and a cluster that cannot be reached
// leaves the process's limit alone in charge.
func TestSearchRateShared(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		ok         bool
		err        error
		status     int
		retryAfter string
	}{
		{"the cluster has budget left", true, nil, 200, ""},
		{"the cluster's budget is spent", false, nil, 429, "7"},
		{"the cluster cannot be reached", false, errors.New("bus down"), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked []string
			var mu sync.Mutex
			shared := budgetsFunc(func(budget, user string, perMinute int) (time.Duration, bool, error) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, fmt.Sprintf("%s %s %d", budget, user, perMinute))
				return 7 * time.Second, tc.ok, tc.err
			})
			e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: 3, SharedSearches: shared})
			user := persistence.NewID()
			res, body := e.get(t, user, "/api/conversations?q=word")
			if res.StatusCode != tc.status || res.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("search: %d (Retry-After %q) %s, want %d (%q)", res.StatusCode, res.Header.Get("Retry-After"), body,
					tc.status, tc.retryAfter)
			}
			if res, _ := e.get(t, user, "/api/conversations"); res.StatusCode != 200 {
				t.Fatalf("listing without q: %d", res.StatusCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{api.BudgetSearches + " " + user + " 3"}; fmt.Sprint(asked) != fmt.Sprint(want) {
				t.Fatalf("the cluster was asked %v, want %v (searches only)", asked, want)
			}
		})
	}
}

// recordingLive is a Live that records the conversation changes it is told.
type recordingLive struct {
	api.NoLive
	mu      sync.Mutex
	changes []string // "action conversation-id"
}

func (l *recordingLive) ConversationChanged(_, action string, c persistence.Conversation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, action+" "+c.ID)
}

func (l *recordingLive) told() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.changes...)
}

// TestCreateForDeletedAccount: POST /api/conversations by a request whose
// account was deleted after its token was checked (the store refuses the
// conversation: persistence.ErrUnknownOwner) answers as a revoked token
// does, 401 unauthorized with WWW-Authenticate, never a 500; nothing is
// stored and no tab is told. A live account creates as before.
func TestCreateForDeletedAccount(t *testing.T) {
	t.Parallel()
	live := &recordingLive{}
	e := newAPIEnv(t, api.ConversationOptions{Live: live})
	deleted := e.user(t)
	if err := e.store.DeleteUser(t.Context(), deleted); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		user   string
		status int
		code   string
	}{
		{"a deleted account", deleted, http.StatusUnauthorized, "unauthorized"},
		{"an id no account ever had", persistence.NewID(), http.StatusUnauthorized, "unauthorized"},
		{"a live account", e.user(t), http.StatusCreated, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(live.told())
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/api/conversations",
				strings.NewReader(`{"title":"after the deletion"}`))
			req.Header.Set("X-User", tc.user)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Conversation persistence.Conversation `json:"conversation"`
				Error        struct{ Code string }    `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Fatalf("create: %d %q, want %d %q", res.StatusCode, body.Error.Code, tc.status, tc.code)
			}
			if auth := res.Header.Get("WWW-Authenticate"); (tc.status == http.StatusUnauthorized) != (auth != "") {
				t.Fatalf("WWW-Authenticate %q with status %d", auth, res.StatusCode)
			}
			page, err := e.store.ListConversations(t.Context(), tc.user, persistence.ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.status == http.StatusCreated {
				want = 1
			}
			if len(page.Conversations) != want {
				t.Fatalf("%d conversations stored, want %d", len(page.Conversations), want)
			}
			told := live.told()[before:]
			if len(told) != want || want == 1 && told[0] != api.ActionCreated+" "+body.Conversation.ID {
				t.Fatalf("tabs told %v, want %d creation(s)", told, want)
			}
		})
	}
}

// TestSearchQueryRefused: a search query that is not UTF-8 is refused
// saying so, where it was told it must be at most 200 characters (which
// it was), and a long one is told its length; neither spends a search.
func TestSearchQueryRefused(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: 1})
	u := e.user(t)
	for _, tc := range []struct{ q, msg string }{
		{"%ff", `"q: must be valid UTF-8"`},
		{"ab%c3", `"q: must be valid UTF-8"`},
		{strings.Repeat("é", api.MaxQueryChars+1), `"q: must be at most 200 characters (got 201)"`},
	} {
		res, body := e.get(t, u, "/api/conversations?q="+tc.q)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_field"`) || !strings.Contains(string(body), tc.msg) {
			t.Fatalf("q=%.20s: %d %s, want 400 invalid_field %s", tc.q, res.StatusCode, body, tc.msg)
		}
	}
	if res, body := e.get(t, u, "/api/conversations?q="+strings.Repeat("é", api.MaxQueryChars)); res.StatusCode != http.StatusOK {
		t.Fatalf("a query of 200 characters after refused ones: %d %s", res.StatusCode, body)
	}
}

// TestSearchRateParallel: searches sent at once spend the user's budget
// one by one: of a burst of 12 against a budget of 3, 3 are answered and
// 9 refused 429 with Retry-After.
func TestSearchRateParallel(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{SearchesPerMinute: 3})
	user := e.user(t)
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 12 {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/api/conversations?q=word", nil)
			req.Header.Set("X-User", user)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			count[res.StatusCode]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if count[http.StatusOK] != 3 || count[http.StatusTooManyRequests] != 9 {
		t.Fatalf("answers %v: want 3 x 200 and 9 x 429", count)
	}
}
