package docs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"chatd/cmd/chatd/app"
	"chatd/hub"
	"chatd/llm"
	"chatd/llm/models"
	"chatd/persistence/sqlite"
	"chatd/transport"
	"chatd/transport/auth"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 30 * time.Second

// startServer runs chatd as make run wires it (SQLite, the offline demo
// model, its titles) on a test HTTP server, with a quicker demo model.
func startServer(t *testing.T) *httptest.Server {
	t.Helper()
	return startServerWith(t, models.Config{DemoDelay: 5 * time.Millisecond})
}

// startServerWith is startServer with the models mc configures.
func startServerWith(t *testing.T, mc models.Config) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: logger})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	mc.Logger = logger
	model := models.New(mc)
	titler := &llm.Titler{Streamer: model, Logger: logger}
	a, err := app.New(app.Config{
		Store: store, Model: model, Titler: titler.TitleFor, Logger: logger,
		Auth:     auth.Options{Secret: []byte(strings.Repeat("d", 32))},
		Accounts: auth.AccountOptions{BcryptCost: bcrypt.MinCost},
		Hub:      hub.Options{CoalesceInterval: 40 * time.Millisecond},
		// CHATD_METRICS_ALLOW's default.
		Metrics: transport.MetricsOptions{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Close()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := store.Close(ctx); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with an optional bearer token and JSON body.
func do(t *testing.T, method, url, token, body string) reply {
	t.Helper()
	header := http.Header{}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	return doWith(t, method, url, body, header)
}

// field returns a string at a dotted path of a JSON object ("conversation.id").
func (r reply) field(t *testing.T, path string) string {
	t.Helper()
	var v any
	if err := json.NewDecoder(bytes.NewReader(r.body)).Decode(&v); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %s", path, r.body)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("no string %s in %s", path, r.body)
	}
	return s
}
