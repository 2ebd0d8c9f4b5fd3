package natsbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"chatd/persistence/sqlite"
	"chatd/transport/auth"
)

// plainHash is what the windows bucket named a key before it was keyed
// by a secret: the first 16 bytes of its SHA-256, which anyone can
// compute from a guess.
func plainHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// TestWindowKeyKeyed: a window's key is no plain hash of what it counts,
// differs between two secrets, and is the same for one secret (every
// instance of a cluster counts into it).
func TestWindowKeyKeyed(t *testing.T) {
	t.Parallel()
	one, other := []byte("one secret, shared by the cluster"), []byte("another secret, another cluster")
	for _, key := range []string{"login-ip:192.0.2.7", "checks-account:someone@example.com", "signup-ip:2001:db8:1:2::/64"} {
		k := windowKey(one, key)
		if k == plainHash(key) {
			t.Errorf("%s: key %s is its plain SHA-256", key, k)
		}
		if k == windowKey(other, key) {
			t.Errorf("%s: two secrets give the same key %s", key, k)
		}
		if k != windowKey(bytes.Clone(one), key) {
			t.Errorf("%s: one secret gives two keys", key)
		}
		if _, err := hex.DecodeString(k); err != nil || len(k) != 32 {
			t.Errorf("%s: key %q, want 32 hex digits", key, k)
		}
	}
}

// TestWindowsHoldNoPlainHash: after a registration, a failed login and a
// login through the account routes, the windows bucket holds keys (the
// limits counted), none of them the plain hash of the email or the
// client address; the password check is counted under its keyed name.
func TestWindowsHoldNoPlainHash(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := healthyBuses(t, ctx, c, "plain", 1)[0]
	srv := accountRoutes(t, b.Windows())

	const email, ip = "known@example.com", "127.0.0.1"
	for _, step := range []struct {
		path, password string
		want           int
	}{
		{"/api/auth/register", "a long enough password", http.StatusCreated},
		{"/api/auth/login", "a wrong password, long enough", http.StatusUnauthorized},
		{"/api/auth/login", "a long enough password", http.StatusOK},
	} {
		body := map[string]string{"email": email, "password": step.password}
		if step.path == "/api/auth/register" {
			body["name"] = "N"
		}
		if got := postJSON(t, srv, step.path, body); got != step.want {
			t.Fatalf("POST %s: %d, want %d", step.path, got, step.want)
		}
	}

	lister, err := b.Windows().bucket().ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for k := range lister.Keys() {
		keys[k] = true
	}
	for _, name := range []string{"checks-account:" + email, "checks-ip:" + ip} {
		if !keys[windowKey(testWindowsSecret, name)] {
			t.Fatalf("the password checks %q are not counted under their keyed name; keys: %v", name, keys)
		}
	}
	for _, plain := range []string{"checks-account:" + email, "login-account:" + email,
		"login-account-ip:" + ip + " " + email, "login-ip:" + ip, "signup-ip:" + ip, "checks-ip:" + ip} {
		if keys[plainHash(plain)] {
			t.Errorf("the bucket holds the plain SHA-256 of %q", plain)
		}
	}
}

// accountRoutes serves the account routes over a new SQLite store, with
// shared as their cluster-wide limits.
func accountRoutes(t *testing.T, shared auth.SharedWindows) *httptest.Server {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	authn, err := auth.NewAuthenticator(store, auth.Options{Secret: []byte("0123456789abcdef0123456789abcdef-test")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.NewAccounts(store, authn, auth.AccountOptions{BcryptCost: bcrypt.MinCost, Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	a.Routes(r.Group("/api"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// postJSON posts body as JSON to srv's path and returns the status.
func postJSON(t *testing.T, srv *httptest.Server, path string, body any) int {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Post(srv.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}
