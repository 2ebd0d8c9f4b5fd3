package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// accountsEnv serves the account routes over a real SQLite store.
type accountsEnv struct {
	t        *testing.T
	srv      *httptest.Server
	store    *sqlite.Store
	accounts *Accounts
}

func newAccountsEnv(t *testing.T, opts AccountOptions) *accountsEnv {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	return newAccountsEnvOn(t, store, opts)
}

// newAccountsEnvOn serves the account routes over store: several of them
// over one store are the instances of a cluster.
func newAccountsEnvOn(t *testing.T, store *sqlite.Store, opts AccountOptions) *accountsEnv {
	t.Helper()
	return newAccountsEnvThrough(t, store, store, opts)
}

// newAccountsEnvThrough serves the account routes over accounts, a
// wrapper of store (a test playing a store that fails some writes).
func newAccountsEnvThrough(t *testing.T, store *sqlite.Store, accounts AccountStore, opts AccountOptions) *accountsEnv {
	t.Helper()
	authn, err := NewAuthenticator(store, Options{Secret: []byte("0123456789abcdef0123456789abcdef-test")})
	if err != nil {
		t.Fatal(err)
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = bcrypt.MinCost
	}
	a, err := NewAccounts(accounts, authn, opts)
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	a.Routes(r.Group("/api"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &accountsEnv{t: t, srv: srv, store: store, accounts: a}
}

// post sends body (a JSON value, or raw bytes) and returns the status and
// the error code of an error answer.
func (e *accountsEnv) post(path string, body any) (int, string, http.Header) {
	e.t.Helper()
	return e.postFrom("", path, body)
}

// postFrom is post from the client address ip (X-Forwarded-For, which the
// test router believes), or from the connection's when ip is "".
func (e *accountsEnv) postFrom(ip, path string, body any) (int, string, http.Header) {
	e.t.Helper()
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.Error.Code + " " + out.Error.Message, res.Header
}

func (e *accountsEnv) register(email, password string) {
	e.t.Helper()
	if status, msg, _ := e.post("/api/auth/register", map[string]string{"email": email, "password": password, "name": "N"}); status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", email, status, msg)
	}
}

// TestLoginLimitsSayWhose: the 429 of an address's failed logins (to any
// accounts) says it is the address's, so a client can tell that another
// email is refused the same; the one of an account's failures from that
// address does not. Before, both said "too many failed logins", and the
// web client told someone behind a shared address who had made no
// attempt to wait, then let them try another email, refused all the same.
func TestLoginLimitsSayWhose(t *testing.T) {
	t.Parallel()
	login := func(email string) map[string]string {
		return map[string]string{"email": email, "password": "a wrong password"}
	}
	for _, tc := range []struct {
		name  string
		opts  AccountOptions
		fails []string // emails failed from the address first
		then  string   // the email refused next
		want  string
	}{
		{"the account from the address", AccountOptions{MaxFailuresPerAccount: 2, MaxFailuresPerIP: 100}, []string{"a@example.com", "a@example.com"}, "a@example.com", "rate_limited too many failed logins; try again later"},
		{"the address", AccountOptions{MaxFailuresPerAccount: 100, MaxFailuresPerIP: 2}, []string{"a@example.com", "b@example.com"}, "c@example.com", "rate_limited too many failed logins from this address; try again later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, tc.opts)
			for _, email := range tc.fails {
				if status, msg, _ := e.postFrom("192.0.2.1", "/api/auth/login", login(email)); status != http.StatusUnauthorized {
					t.Fatalf("failing %s: %d %s, want 401", email, status, msg)
				}
			}
			status, msg, h := e.postFrom("192.0.2.1", "/api/auth/login", login(tc.then))
			if status != http.StatusTooManyRequests || msg != tc.want || h.Get("Retry-After") == "" {
				t.Fatalf("then %s: %d %q (Retry-After %q), want 429 %q with Retry-After", tc.then, status, msg, h.Get("Retry-After"), tc.want)
			}
		})
	}
}

// TestParallelGuessesCheckAtMostTheLimit sends 20 wrong passwords at once:
// the attempt is counted before the hash, so at most the account's limit
// of passwords is checked and the rest are refused with 429.
func TestParallelGuessesCheckAtMostTheLimit(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 5, MaxFailuresPerIP: 1000})
	e.register("target@example.com", "the right password")
	var checked atomic.Int32
	e.accounts.passwords.checked = func() { checked.Add(1) }

	statuses := make(chan int, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			<-start
			status, _, _ := e.post("/api/auth/login", map[string]string{"email": "target@example.com", "password": "guess number " + string(rune('a'+i))})
			statuses <- status
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if n := checked.Load(); n > 5 {
		t.Fatalf("%d passwords checked in a burst against a limit of 5", n)
	}
	if count[http.StatusUnauthorized] > 5 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != 20 {
		t.Fatalf("answers %v: want at most 5 x 401 and the rest 429", count)
	}
	// A success gives its attempt back to the IP and clears the account.
	e2 := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 2, MaxFailuresPerIP: 2})
	e2.register("ok@example.com", "the right password")
	for range 3 {
		if status, msg, _ := e2.post("/api/auth/login", map[string]string{"email": "ok@example.com", "password": "the right password"}); status != http.StatusOK {
			t.Fatalf("successful logins use up the limit: %d %s", status, msg)
		}
	}
}

// TestFloodKeepsAccountBlocked: an attacker who blocked an account, then
// fills the limiter's table with failed logins to other emails in
// parallel, does not get the account's count back: its next login, with
// the right password even, is still refused with 429 until its window
// ends. Before, a full table dropped arbitrary keys, the blocked one
// among them.
func TestFloodKeepsAccountBlocked(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 3, MaxFailuresPerIP: 100_000, MaxTrackedKeys: 20})
	e.register("target@example.com", "the right password")
	login := func(email, password string) int {
		status, _, _ := e.post("/api/auth/login", map[string]string{"email": email, "password": password})
		return status
	}
	for i := range 3 {
		if got := login("target@example.com", "wrong guess "+string(rune('a'+i))); got != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, got)
		}
	}
	var wg sync.WaitGroup
	for i := range 80 { // four times the table, in parallel
		wg.Go(func() { login("filler"+strconv.Itoa(i)+"@example.com", "some password") })
	}
	wg.Wait()
	if got := login("target@example.com", "the right password"); got != http.StatusTooManyRequests {
		t.Fatalf("login to the blocked account after the flood: %d, want 429", got)
	}
}

// TestLoginPasswordBytes: login applies registration's byte rules, so a
// password longer than bcrypt's 72 bytes, or padded with NULs, never
// matches on its first 72 bytes.
func TestLoginPasswordBytes(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 100})
	pw71 := strings.Repeat("p", 71)
	e.register("long@example.com", pw71)
	pw72 := strings.Repeat("q", 72)
	e.register("full@example.com", pw72)
	cases := []struct {
		name, email, password string
		status                int
	}{
		{"the password itself", "long@example.com", pw71, http.StatusOK},
		{"72 bytes exactly", "full@example.com", pw72, http.StatusOK},
		{"padded with a NUL to 72 bytes", "long@example.com", pw71 + "\x00", http.StatusBadRequest},
		{"padded with NULs past 72 bytes", "long@example.com", pw71 + "\x00\x00\x00", http.StatusBadRequest},
		{"more bytes after the first 72", "full@example.com", pw72 + "extra", http.StatusBadRequest},
		{"wrong password", "full@example.com", strings.Repeat("q", 71) + "r", http.StatusUnauthorized},
	}
	for _, c := range cases {
		status, msg, _ := e.post("/api/auth/login", map[string]string{"email": c.email, "password": c.password})
		if status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, msg, c.status)
		}
		if status == http.StatusBadRequest && !strings.HasPrefix(msg, "invalid_field") {
			t.Errorf("%s: %s, want invalid_field naming the password", c.name, msg)
		}
	}
	status, msg, _ := e.post("/api/auth/register", map[string]string{"email": "nul@example.com", "password": "password\x00", "name": "N"})
	if status != http.StatusBadRequest {
		t.Errorf("register with a NUL: %d %s", status, msg)
	}
}

// TestEmailAndNameText: look-alike spellings of an address are one
// account, mixed scripts and invalid or directional text are refused
// naming the field, and accounts stored before NFKC still log in.
func TestEmailAndNameText(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 100, MaxFailuresPerIP: 1000, RegistrationsPerHourIP: 1000})
	e.register("ada@example.com", "analytical engine")
	cases := []struct {
		name, email, userName string
		status                int
		field                 string
	}{
		{"fullwidth letter", "ａda@example.com", "N", http.StatusConflict, ""},
		{"upper case and fullwidth", "ＡＤＡ@EXAMPLE.com", "N", http.StatusConflict, ""},
		{"Cyrillic a in a Latin local part", "\u0430da@example.com", "N", http.StatusBadRequest, "email"},
		{"Cyrillic e in a Latin domain", "ada@\u0435xample.com", "N", http.StatusBadRequest, "email"},
		{"bidi override in the email", "ada\u202e@example.com", "N", http.StatusBadRequest, "email"},
		{"bidi override in the name", "b@example.com", "Eve\u202egnp.exe", http.StatusBadRequest, "name"},
		{"isolate in the name", "b@example.com", "Eve\u2066x", http.StatusBadRequest, "name"},
		{"control character in the name", "b@example.com", "Eve\x07", http.StatusBadRequest, "name"},
		{"replacement character in the name", "b@example.com", "Eve\ufffd", http.StatusBadRequest, "name"},
		{"zero-width space in the local part", "ada\u200b@example.com", "N", http.StatusBadRequest, "email"},
		{"zero-width joiner in the local part", "a\u200dda@example.com", "N", http.StatusBadRequest, "email"},
		{"soft hyphen in the local part", "a\u00adda@example.com", "N", http.StatusBadRequest, "email"},
		{"zero-width space in the domain", "ada@exa\u200bmple.com", "N", http.StatusBadRequest, "email"},
		{"byte order mark", "ada\ufeff@example.com", "N", http.StatusBadRequest, "email"},
		{"word joiner first", "\u2060ada@example.com", "N", http.StatusBadRequest, "email"},
		{"variation selector", "ada\ufe0f@example.com", "N", http.StatusBadRequest, "email"},
		{"Hangul filler in a Hangul local part", "한글\u3164@example.kr", "N", http.StatusBadRequest, "email"},
		{"non-joiner in a Persian word", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645@example.ir", "N", http.StatusCreated, ""},
		{"joiner in a Devanagari conjunct", "\u0915\u094d\u200d\u0937@example.in", "N", http.StatusCreated, ""},
		{"non-joiner after a Persian word's last letter", "\u0645\u06cc\u200c@example.ir", "N", http.StatusBadRequest, "email"},
		{"non-joiner between Latin letters", "a\u200cda@example.com", "N", http.StatusBadRequest, "email"},
		{"one script per part", "иван@пример.рф", "Иван", http.StatusCreated, ""},
		{"Japanese scripts together", "ひらがなカタカナ漢字@example.jp", "N", http.StatusCreated, ""},
	}
	for _, c := range cases {
		status, msg, _ := e.post("/api/auth/register", map[string]string{"email": c.email, "password": "12345678", "name": c.userName})
		if status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, msg, c.status)
			continue
		}
		if c.field != "" && !strings.Contains(msg, c.field) {
			t.Errorf("%s: %q does not name the field %s", c.name, msg, c.field)
		}
	}
	// Invalid UTF-8 in the raw body (encoding/json would quietly make it U+FFFD).
	raw := []byte("{\"email\":\"c\xff@example.com\",\"password\":\"12345678\",\"name\":\"N\"}")
	if status, msg, _ := e.post("/api/auth/register", raw); status != http.StatusBadRequest || !strings.Contains(msg, "email") {
		t.Errorf("invalid UTF-8 email: %d %s", status, msg)
	}
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "ＡDA@example.com", "password": "analytical engine"}); status != http.StatusOK {
		t.Errorf("login with a fullwidth spelling: %d %s", status, msg)
	}
	// An account stored before normalisation (lower case, not NFKC).
	hash, _ := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	legacy := persistence.User{Email: "ｂob@example.com", Name: "Bob", PasswordHash: string(hash)}
	if err := e.store.CreateUser(context.Background(), &legacy); err != nil {
		t.Fatal(err)
	}
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "ｂob@example.com", "password": "legacy password"}); status != http.StatusOK {
		t.Errorf("login of an account stored before NFKC: %d %s", status, msg)
	}
}

// TestRegistrationsPerIP: parallel sign-ups from one address pass at most
// the hourly limit; the rest get 429 with Retry-After.
func TestRegistrationsPerIP(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{RegistrationsPerHourIP: 3})
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[int]int{}
	for i := range 12 {
		wg.Go(func() {
			status, _, h := e.post("/api/auth/register", map[string]string{
				"email": "user" + string(rune('a'+i)) + "@example.com", "password": "12345678", "name": "N"})
			if status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			count[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if count[http.StatusCreated] != 3 || count[http.StatusTooManyRequests] != 9 {
		t.Fatalf("answers %v: want 3 x 201 and 9 x 429", count)
	}
}

// TestFullLimiterSaysWhy: a client refused because the limiter's table is
// full of blocked keys (not because of anything it did) is told so, with
// Retry-After, while a client whose own key is blocked is still told it
// failed too often. Before, both got "too many failed logins" (and "too
// many registrations from this address"), though the refused client had
// not failed a single login.
func TestFullLimiterSaysWhy(t *testing.T) {
	t.Parallel()
	login := func(email string) map[string]string {
		return map[string]string{"email": email, "password": "a wrong password"}
	}
	signup := func(email string) map[string]string {
		return map[string]string{"email": email, "password": "12345678", "name": "N"}
	}
	type attempt struct {
		ip, path string
		body     map[string]string
	}
	for _, tc := range []struct {
		name    string
		opts    AccountOptions
		fill    []attempt // answered as usual, each blocking its key
		blocked attempt   // a key that is blocked
		refused attempt   // a new key, refused for the full table
		want    string    // the message of refused
	}{
		{
			name:    "login",
			opts:    AccountOptions{MaxFailuresPerAccount: 1, MaxFailuresPerIP: 1000, MaxTrackedKeys: 2},
			fill:    []attempt{{"", "/api/auth/login", login("a@example.com")}, {"", "/api/auth/login", login("b@example.com")}},
			blocked: attempt{"", "/api/auth/login", login("a@example.com")},
			refused: attempt{"", "/api/auth/login", login("c@example.com")},
			want:    "too many login attempts from too many clients right now; try again later",
		},
		{
			name:    "register",
			opts:    AccountOptions{RegistrationsPerHourIP: 1, MaxTrackedKeys: 2},
			fill:    []attempt{{"192.0.2.1", "/api/auth/register", signup("a@example.com")}, {"192.0.2.2", "/api/auth/register", signup("b@example.com")}},
			blocked: attempt{"192.0.2.1", "/api/auth/register", signup("c@example.com")},
			refused: attempt{"192.0.2.3", "/api/auth/register", signup("d@example.com")},
			want:    "too many sign-ups from too many clients right now; try again later",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, tc.opts)
			for _, a := range tc.fill {
				if status, msg, _ := e.postFrom(a.ip, a.path, a.body); status == http.StatusTooManyRequests {
					t.Fatalf("filling the table: %d %s", status, msg)
				}
			}
			status, msg, _ := e.postFrom(tc.blocked.ip, tc.blocked.path, tc.blocked.body)
			if status != http.StatusTooManyRequests || msg == "rate_limited "+tc.want {
				t.Fatalf("blocked key: %d %q, want 429 saying the client went over its limit", status, msg)
			}
			status, msg, h := e.postFrom(tc.refused.ip, tc.refused.path, tc.refused.body)
			if status != http.StatusTooManyRequests || msg != "rate_limited "+tc.want {
				t.Fatalf("new key, table full: %d %q, want 429 %q", status, msg, tc.want)
			}
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		})
	}
}

// TestLongEmailKeysStaySmall: failed logins naming huge emails (up to the
// body limit) are still limited per email, but the limiter keeps a small
// key for each, not the email: before, every such email was kept whole as
// its key, so the table of up to MaxTrackedKeys (100,000) failed emails
// could hold a body's worth of memory each (up to 100 GB).
func TestLongEmailKeysStaySmall(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 2, MaxFailuresPerIP: 1000})
	long := func(c string) string { return strings.Repeat(c, 64<<10) + "@example.com" }
	for _, tc := range []struct {
		email string
		want  []int
	}{
		{long("a"), []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests}},
		{long("b"), []int{http.StatusUnauthorized}},
		{"  " + strings.ToUpper(long("a")) + " ", []int{http.StatusTooManyRequests}}, // the same account, spelled otherwise
	} {
		for i, want := range tc.want {
			if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": tc.email, "password": "a wrong password"}); status != want {
				t.Fatalf("login %d with a %d-byte email: %d %s, want %d", i, len(tc.email), status, msg, want)
			}
		}
	}
	for _, g := range []*gate{e.accounts.byAccount, e.accounts.byAccountIP} {
		l := g.local
		l.mu.Lock()
		if len(l.entries) != 2 {
			t.Errorf("%s: %d keys tracked, want 2", g.name, len(l.entries))
		}
		for key := range l.entries {
			if len(key) > maxEmailBytes+len(" 127.0.0.1") {
				t.Errorf("%s: a key of %d bytes tracked", g.name, len(key))
			}
		}
		l.mu.Unlock()
	}
}
