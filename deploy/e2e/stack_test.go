package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// frontendRoot returns the static root nginx serves: the real build in
// frontend/dist (built with npm run build when the front end's packages are
// installed but it was not built yet), else a small stand-in with the same
// layout, which is reported (the browser check then cannot run).
//
// CHATD_E2E_FRONTEND=standin forces the stand-in (to check nginx and the
// server while the front end does not build; the browser check then fails).
func frontendRoot(t *testing.T) (dir string, real bool) {
	t.Helper()
	root := repoRoot(t)
	dist := filepath.Join(root, "frontend", "dist")
	standin := os.Getenv("CHATD_E2E_FRONTEND") == "standin"
	if _, err := os.Stat(filepath.Join(dist, "index.html")); err == nil && !standin {
		return dist, true
	}
	if _, err := os.Stat(filepath.Join(root, "frontend", "node_modules")); err == nil && !standin {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		out, err := run(ctx, nil, filepath.Join(root, "frontend"), "npm", "run", "build")
		if err != nil {
			t.Fatalf("frontend/dist is missing and npm run build failed: %v\n%s", err, out)
		}
		return dist, true
	}
	t.Logf("serving a stand-in front end (frontend/dist not built, frontend/node_modules missing, or CHATD_E2E_FRONTEND=standin)")
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Larger than gzip_min_length, so compression is observable.
	js := "// stand-in bundle\n" + strings.Repeat("console.log('chatd stand-in front end');\n", 60)
	index := `<!doctype html><html><head><meta charset="utf-8"><title>chatd</title>` +
		`<script type="module" crossorigin src="/assets/index-Dx7a9Q2b.js"></script></head>` +
		`<body><div id="root"></div></body></html>` + "\n"
	for name, body := range map[string]string{"index.html": index, "assets/index-Dx7a9Q2b.js": js} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, false
}

// fakeAI starts the fake OpenAI server binary and returns its /v1 base URL.
func fakeAI(t *testing.T) string {
	t.Helper()
	bin := buildBinary(t, "fakeai")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProc(t, "fakeai", nil, t.TempDir(), bin, "-addr", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitOK(ctx, http.DefaultClient, "http://"+addr+"/healthz", p); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/v1"
}

// chatdOptions are the settings the test gives the server.
type chatdOptions struct {
	OpenAIBaseURL string
	PingInterval  time.Duration // 0: the server's default
	Extra         []string      // more KEY=VALUE settings
}

// chatdServer is a running chatd.
type chatdServer struct {
	Addr    string // host:port
	DataDir string
	proc    *proc
}

// chatdEnv is the environment for a chatd on addr with its data in dataDir,
// as deploy/chatd.env.example documents it.
func chatdEnv(addr, dataDir string, o chatdOptions) []string {
	env := []string{
		"CHATD_ADDR=" + addr,
		"CHATD_DATA_DIR=" + dataDir,
		"CHATD_TRUSTED_PROXIES=127.0.0.1",
		"CHATD_LOG_LEVEL=info",
	}
	if o.OpenAIBaseURL != "" {
		env = append(env, "OPENAI_BASE_URL="+o.OpenAIBaseURL, "OPENAI_API_KEY=sk-deploy-test",
			"OPENAI_MODELS=fake-mini")
	}
	if o.PingInterval > 0 {
		env = append(env, "CHATD_WS_PING_INTERVAL="+o.PingInterval.String())
	}
	return append(env, o.Extra...)
}

// startChatd builds and starts the server with the embedded database in a
// fresh data directory and waits until it is ready.
func startChatd(t *testing.T, o chatdOptions) *chatdServer {
	t.Helper()
	bin := buildBinary(t, "chatd")
	s := &chatdServer{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), DataDir: t.TempDir()}
	s.proc = startProc(t, "chatd", chatdEnv(s.Addr, s.DataDir, o), s.DataDir, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitOK(ctx, http.DefaultClient, "http://"+s.Addr+"/readyz", s.proc); err != nil {
		t.Fatal(err)
	}
	return s
}
