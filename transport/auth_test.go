package transport_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"chatd/persistence"
	"chatd/transport/auth"
)

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var loggedOut []string
	var versions []int64
	e := newEnv(t, envOptions{accounts: auth.AccountOptions{OnLogout: func(id string, version int64) {
		mu.Lock()
		defer mu.Unlock()
		loggedOut = append(loggedOut, id)
		versions = append(versions, version)
	}}})

	r := e.do("POST", "/api/auth/register", "", map[string]string{
		"email": "  Ada@Example.COM ", "password": "analytical engine", "name": " Ada Lovelace "})
	expect(t, "register", r, http.StatusCreated, "")
	reg := r.json(t)
	u := reg["user"].(map[string]any)
	if u["email"] != "ada@example.com" || u["name"] != "Ada Lovelace" {
		t.Fatalf("user not normalised: %v", u)
	}
	for _, k := range []string{"passwordHash", "PasswordHash", "tokenVersion", "TokenVersion"} {
		if _, ok := u[k]; ok {
			t.Fatalf("user view leaks %s: %v", k, u)
		}
	}
	userID := u["id"].(string)
	if !persistence.ValidID(userID) || reg["token"] == "" {
		t.Fatalf("register answer: %s", r.body)
	}

	r = e.do("POST", "/api/auth/login", "", map[string]string{"email": "ADA@example.com", "password": "analytical engine"})
	expect(t, "login", r, http.StatusOK, "")
	token := r.json(t)["token"].(string)

	r = e.do("GET", "/api/auth/me", token, nil)
	expect(t, "me", r, http.StatusOK, "")
	if me := r.json(t)["user"].(map[string]any); me["id"] != userID || me["email"] != "ada@example.com" {
		t.Fatalf("me = %v", me)
	}

	first := reg["token"].(string)
	expect(t, "logout", e.do("POST", "/api/auth/logout", token, nil), http.StatusNoContent, "")
	for name, tok := range map[string]string{"login token": token, "register token": first} {
		r = e.do("GET", "/api/auth/me", tok, nil)
		expect(t, name+" after logout", r, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: %v", r.header)
		}
	}
	mu.Lock()
	if len(loggedOut) != 1 || loggedOut[0] != userID {
		t.Fatalf("OnLogout calls = %v, want [%s]", loggedOut, userID)
	}
	closedBefore := versions[0]
	mu.Unlock()

	r = e.do("POST", "/api/auth/login", "", map[string]string{"email": "ada@example.com", "password": "analytical engine"})
	expect(t, "login after logout", r, http.StatusOK, "")
	again := r.json(t)["token"].(string)
	expect(t, "me with the new token", e.do("GET", "/api/auth/me", again, nil), http.StatusOK, "")
	// The logout closes the sessions before its version: those it revoked,
	// never one signed in after it (its close may reach an instance late).
	if old, renewed := tokenVersion(t, token), tokenVersion(t, again); old >= closedBefore || renewed < closedBefore {
		t.Fatalf("logout closes sessions before version %d; the revoked session has %d, the next one %d", closedBefore, old, renewed)
	}
}

// tokenVersion reads the token version a token carries (its "tv" claim).
func tokenVersion(t *testing.T, token string) int64 {
	t.Helper()
	var claims struct {
		jwt.RegisteredClaims
		TokenVersion int64 `json:"tv"`
	}
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		t.Fatalf("read the token's claims: %v", err)
	}
	return claims.TokenVersion
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.register("Taken")
	long := strings.Repeat("é", 37) // 37 characters, 74 bytes
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"duplicate email", map[string]string{"email": "TAKEN@example.com", "password": "12345678", "name": "x"}, 409, "conflict"},
		{"weak password", map[string]string{"email": "a@example.com", "password": "1234567", "name": "x"}, 400, "invalid_field"},
		{"password over 72 bytes", map[string]string{"email": "a@example.com", "password": long, "name": "x"}, 400, "invalid_field"},
		{"display name in email", map[string]string{"email": "Bob <b@example.com>", "password": "12345678", "name": "x"}, 400, "invalid_field"},
		{"not an email", map[string]string{"email": "nobody", "password": "12345678", "name": "x"}, 400, "invalid_field"},
		{"empty name", map[string]string{"email": "a@example.com", "password": "12345678", "name": "  "}, 400, "invalid_field"},
		{"name too long", map[string]string{"email": "a@example.com", "password": "12345678", "name": strings.Repeat("n", 101)}, 400, "invalid_field"},
		{"unknown field", map[string]any{"email": "a@example.com", "password": "12345678", "name": "x", "admin": true}, 400, "bad_request"},
		{"wrong type", map[string]any{"email": 5, "password": "12345678", "name": "x"}, 400, "invalid_field"},
		{"not JSON", "{nope", 400, "bad_request"},
		{"two objects", `{"email":"a@example.com","password":"12345678","name":"x"} {}`, 400, "bad_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/auth/register", "", c.body)
			expect(t, c.name, r, c.status, c.code)
		})
	}
	// Eight characters of any script are enough.
	r := e.do("POST", "/api/auth/register", "", map[string]string{"email": "u@example.com", "password": "密码密码密码密码", "name": "U"})
	expect(t, "multi-byte password", r, http.StatusCreated, "")
}

func TestRegistrationClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{accounts: auth.AccountOptions{RegistrationClosed: true}})
	r := e.do("POST", "/api/auth/register", "", map[string]string{"email": "a@example.com", "password": "12345678", "name": "A"})
	expect(t, "register", r, http.StatusForbidden, "forbidden")
}

func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{accounts: auth.AccountOptions{BcryptCost: 10, MaxFailuresPerAccount: 100, MaxFailuresPerIP: 100}})
	u := e.register("Known")

	wrong := e.do("POST", "/api/auth/login", "", map[string]string{"email": u.email, "password": "not the password"})
	unknown := e.do("POST", "/api/auth/login", "", map[string]string{"email": "ghost@example.com", "password": "not the password"})
	expect(t, "wrong password", wrong, http.StatusUnauthorized, "unauthorized")
	expect(t, "unknown email", unknown, http.StatusUnauthorized, "unauthorized")
	if string(wrong.body) != string(unknown.body) {
		t.Fatalf("bodies differ:\n%s\n%s", wrong.body, unknown.body)
	}

	// Both paths run one bcrypt comparison at the same cost. Time them
	// interleaved (so load from other tests hits both alike) and compare the
	// fastest of each: cost 10 is tens of milliseconds, far above the noise
	// of an HTTP round trip. The bounds are wide because a loaded machine
	// (the whole suite runs in parallel) can slow every sample of one side;
	// a path that skips bcrypt is hundreds of times faster, far outside
	// them, and password_test.go checks the dummy's cost exactly.
	fastest := map[string]time.Duration{}
	for i := 0; i < 7; i++ {
		for _, email := range []string{u.email, "ghost" + strconv.Itoa(i) + "@example.com"} {
			start := time.Now()
			r := e.do("POST", "/api/auth/login", "", map[string]string{"email": email, "password": "still not it"})
			took := time.Since(start)
			expect(t, "timed failure", r, http.StatusUnauthorized, "unauthorized")
			key := "known"
			if email != u.email {
				key = "unknown"
			}
			if d, ok := fastest[key]; !ok || took < d {
				fastest[key] = took
			}
		}
	}
	ratio := float64(fastest["unknown"]) / float64(fastest["known"])
	if ratio < 1.0/3 || ratio > 3 {
		t.Fatalf("unknown email took %v, wrong password %v: they should cost about the same", fastest["unknown"], fastest["known"])
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{accounts: auth.AccountOptions{MaxFailuresPerAccount: 3, MaxFailuresPerIP: 5}})
	u := e.register("Target")
	for i := 0; i < 3; i++ {
		r := e.do("POST", "/api/auth/login", "", map[string]string{"email": u.email, "password": "guess " + strconv.Itoa(i)})
		expect(t, "failure "+strconv.Itoa(i), r, http.StatusUnauthorized, "unauthorized")
	}
	// The account is now blocked, even with the right password.
	r := e.do("POST", "/api/auth/login", "", map[string]string{"email": u.email, "password": u.password})
	expect(t, "blocked account", r, http.StatusTooManyRequests, "rate_limited")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 15*60 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}

	// Two more failures on other accounts reach the per-IP limit (5).
	for i := 0; i < 2; i++ {
		r := e.do("POST", "/api/auth/login", "", map[string]string{"email": "other" + strconv.Itoa(i) + "@example.com", "password": "whatever1"})
		expect(t, "other account", r, http.StatusUnauthorized, "unauthorized")
	}
	r = e.do("POST", "/api/auth/login", "", map[string]string{"email": "fresh@example.com", "password": "whatever1"})
	expect(t, "blocked IP", r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// TestTokenValidation sends tokens that must all be refused with 401.
func TestTokenValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register("Holder")
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": u.id, "tv": 0, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"iss": auth.DefaultIssuer, "aud": auth.DefaultAudience}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs256 := func(edit func(jwt.MapClaims)) string { return sign(jwt.SigningMethodHS256, testSecret, claims(edit)) }

	// The control: a token built the same way with nothing wrong works.
	expect(t, "well-formed token", e.do("GET", "/api/auth/me", hs256(nil), nil), http.StatusOK, "")

	cases := map[string]string{
		"alg none":       sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		"HS512":          sign(jwt.SigningMethodHS512, testSecret, claims(nil)),
		"another secret": sign(jwt.SigningMethodHS256, []byte("another secret, 32 bytes at least!!"), claims(nil)),
		"expired": hs256(func(c jwt.MapClaims) {
			c["iat"] = now.Add(-2 * time.Hour).Unix()
			c["exp"] = now.Add(-time.Hour).Unix()
		}),
		"no exp":            hs256(func(c jwt.MapClaims) { delete(c, "exp") }),
		"no iat":            hs256(func(c jwt.MapClaims) { delete(c, "iat") }),
		"wrong audience":    hs256(func(c jwt.MapClaims) { c["aud"] = "someone-else" }),
		"no audience":       hs256(func(c jwt.MapClaims) { delete(c, "aud") }),
		"wrong issuer":      hs256(func(c jwt.MapClaims) { c["iss"] = "evil" }),
		"missing sub":       hs256(func(c jwt.MapClaims) { delete(c, "sub") }),
		"malformed sub":     hs256(func(c jwt.MapClaims) { c["sub"] = "admin" }),
		"unknown user":      hs256(func(c jwt.MapClaims) { c["sub"] = persistence.NewID() }),
		"missing tv":        hs256(func(c jwt.MapClaims) { delete(c, "tv") }),
		"newer tv":          hs256(func(c jwt.MapClaims) { c["tv"] = 1 }),
		"garbage":           "this.is.not-a-jwt",
		"empty bearer":      "",
		"signature removed": strings.Join(strings.Split(hs256(nil), ".")[:2], ".") + ".",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.do("GET", "/api/auth/me", "", nil, "Authorization", "Bearer "+token)
			expect(t, name, r, http.StatusUnauthorized, "unauthorized")
		})
	}

	// A token issued by a host whose clock is ahead is accepted: iat is
	// required but not compared with this host's clock (the hosts' clocks
	// need not agree; transport/auth TestClockSkew).
	ahead := hs256(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })
	expect(t, "issued by a clock an hour ahead", e.do("GET", "/api/auth/me", "", nil, "Authorization", "Bearer "+ahead), http.StatusOK, "")

	// An old token version: valid until logout bumps the version.
	old := hs256(nil)
	if _, err := e.store.BumpTokenVersion(context.Background(), u.id); err != nil {
		t.Fatal(err)
	}
	expect(t, "old token version", e.do("GET", "/api/auth/me", old, nil), http.StatusUnauthorized, "unauthorized")
	expect(t, "current token version", e.do("GET", "/api/auth/me", hs256(func(c jwt.MapClaims) { c["tv"] = 1 }), nil), http.StatusOK, "")

	// Other schemes are not bearer tokens.
	r := e.do("GET", "/api/auth/me", "", nil, "Authorization", "Basic "+hs256(nil))
	expect(t, "basic scheme", r, http.StatusUnauthorized, "unauthorized")
}

// TestTokenPayloadHoldsNothingPersonal decodes an issued token.
func TestTokenPayloadHoldsNothingPersonal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register("Private")
	c := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(u.token, c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Method.Alg() != "HS256" {
		t.Fatalf("alg = %s", tok.Method.Alg())
	}
	want := map[string]bool{"sub": true, "tv": true, "iat": true, "exp": true, "iss": true, "aud": true}
	for k := range c {
		if !want[k] {
			t.Errorf("unexpected claim %q", k)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("missing claims %v", want)
	}
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	if got := exp.Sub(iat.Time); got != auth.DefaultTTL {
		t.Errorf("lifetime %v, want %v", got, auth.DefaultTTL)
	}
	if strings.Contains(string(mustDecodeSegment(t, u.token)), "example.com") {
		t.Error("the payload holds the email")
	}
}

func mustDecodeSegment(t *testing.T, token string) []byte {
	t.Helper()
	b, err := jwt.NewParser().DecodeSegment(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHashingSaturation: with every hashing slot busy past the queue wait,
// logins are refused with 503 instead of piling up.
func TestHashingSaturation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{accounts: auth.AccountOptions{BcryptCost: 10, MaxConcurrentHashes: 1,
		HashQueueWait: time.Millisecond, MaxFailuresPerIP: 1000, MaxFailuresPerAccount: 1000}})
	var wg sync.WaitGroup
	statuses := make(chan response, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("POST", "/api/auth/login", "", map[string]string{"email": "flood@example.com", "password": "flooding"})
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for r := range statuses {
		counts[r.status]++
		if r.status == http.StatusServiceUnavailable {
			expect(t, "saturated", r, 503, "unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		}
	}
	if counts[503] == 0 || counts[401] == 0 || counts[401]+counts[503] != 8 {
		t.Fatalf("statuses %v: want some 401 (hashed) and some 503 (refused)", counts)
	}
}
