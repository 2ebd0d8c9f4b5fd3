package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserResult is what browser-check.mjs prints.
type browserResult struct {
	OK         bool              `json:"ok"`
	Steps      []string          `json:"steps"`
	Violations []json.RawMessage `json:"violations"`
	Errors     []string          `json:"errors"`
	Answer     string            `json:"answer"`
	Transport  string            `json:"transport"`
	Math       *struct {
		Elements, Styled, Applied int
	} `json:"math"`
}

// checkBrowser runs deploy/e2e/browser-check.mjs (playwright-core from
// deploy/node_modules, the system's Chromium) against the site: sign up,
// send a message, read the rendered answer, with no CSP violation and no
// page error along the way.
//
// mathSite, when not nil, runs the offline demo model, which quotes the
// prompt: math in the prompt comes back rendered by KaTeX, whose inline
// styles must apply under the CSP.
func checkBrowser(t *testing.T, site, mathSite *nginxSite) {
	node := need(t, "node", "apt-get install -y nodejs npm")
	chromium := need(t, "chromium", "apt-get install -y chromium")
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "deploy", "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed in deploy/: run  npm ci --prefix deploy  (%v)", err)
	}
	shot := filepath.Join(t.TempDir(), "browser.png")
	if dir := os.Getenv("CHATD_E2E_ARTIFACTS"); dir != "" {
		shot = filepath.Join(dir, "deploy-browser.png")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"BASE_URL=" + site.Origin(), "CHROMIUM=" + chromium, "SCREENSHOT=" + shot}
	if mathSite != nil {
		env = append(env, "MATH_BASE_URL="+mathSite.Origin())
	}
	out, err := run(ctx, env, root, node, filepath.Join(root, "deploy", "e2e", "browser-check.mjs"))
	// The result is the last line; Chromium may print before it.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res browserResult
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
		t.Fatalf("browser-check.mjs: %v (%v)\n%s", err, jerr, out)
	}
	t.Logf("browser: steps %q, transport %q", res.Steps, res.Transport)
	if !res.OK {
		t.Errorf("the browser flow did not complete: steps %q", res.Steps)
	}
	for _, v := range res.Violations {
		t.Errorf("CSP violation: %s", v)
	}
	for _, e := range res.Errors {
		t.Errorf("browser: %s", e)
	}
	if mathSite != nil && res.OK {
		if m := res.Math; m == nil || m.Elements == 0 || m.Styled == 0 || m.Applied != m.Styled {
			t.Errorf("math under the CSP: %+v, want KaTeX elements whose inline styles all apply", m)
		}
	}
	if res.OK && res.Transport != "websocket" {
		t.Errorf("the app did not open a WebSocket through nginx (transport %q)", res.Transport)
	}
	if t.Failed() {
		t.Logf("screenshot of the last page: %s", shot)
	}
}
