package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pm2App is the part of `pm2 jlist` the test reads.
type pm2App struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Env  struct {
		Status      string `json:"status"`
		RestartTime int    `json:"restart_time"`
	} `json:"pm2_env"`
}

// pm2 runs the pm2 installed in deploy/ against a private PM2_HOME.
type pm2 struct {
	bin string
	env []string
	dir string
}

func (p *pm2) run(ctx context.Context, args ...string) (string, error) {
	return run(ctx, p.env, p.dir, append([]string{p.bin}, args...)...)
}

// app returns chatd's entry in pm2's process list.
func (p *pm2) app(ctx context.Context) (pm2App, error) {
	out, err := p.run(ctx, "jlist")
	if err != nil {
		return pm2App{}, fmt.Errorf("pm2 jlist: %w: %s", err, out)
	}
	// jlist prints the JSON list, possibly after daemon start-up chatter.
	if i := strings.Index(out, "["); i >= 0 {
		out = out[i:]
	}
	var apps []pm2App
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		return pm2App{}, fmt.Errorf("pm2 jlist: %w: %.300s", err, out)
	}
	for _, a := range apps {
		if a.Name == "chatd" {
			return a, nil
		}
	}
	return pm2App{}, fmt.Errorf("no chatd in pm2's list: %.300s", out)
}

// TestPM2 runs chatd under pm2 from deploy/ecosystem.config.js: pm2 restarts
// it after kill -9, stops it gracefully, and its out log receives lines.
func TestPM2(t *testing.T) {
	need(t, "node", "apt-get install -y nodejs npm")
	root := repoRoot(t)
	bin := filepath.Join(root, "deploy", "node_modules", ".bin", "pm2")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("pm2 is not installed in deploy/: run  npm ci --prefix deploy  (%v)", err)
	}
	chatd := buildBinary(t, "chatd")

	tmp := t.TempDir()
	logDir, work, data := filepath.Join(tmp, "log"), filepath.Join(tmp, "work"), filepath.Join(tmp, "data")
	for _, d := range []string{logDir, work, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	envFile := filepath.Join(tmp, "chatd.env")
	var envText strings.Builder
	envText.WriteString("# written by the pm2 test, in the format of deploy/chatd.env.example\n")
	for _, kv := range chatdEnv(addr, data, chatdOptions{}) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&envText, "%s=\"%s\"\n", k, v)
	}
	if err := os.WriteFile(envFile, []byte(envText.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pm2{bin: bin, dir: root, env: []string{
		"PM2_HOME=" + filepath.Join(tmp, "pm2"),
		"CHATD_BIN=" + chatd, "CHATD_ENV_FILE=" + envFile,
		"CHATD_LOG_DIR=" + logDir, "CHATD_WORKDIR=" + work,
	}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if out, err := p.run(ctx, "kill"); err != nil {
			t.Errorf("pm2 kill: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("--- pm2.log:\n%s", tail(filepath.Join(tmp, "pm2", "pm2.log"), 30))
			t.Logf("--- chatd.error.log:\n%s", tail(filepath.Join(logDir, "chatd.error.log"), 30))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := p.run(ctx, "start", filepath.Join(root, "deploy", "ecosystem.config.js")); err != nil {
		t.Fatalf("pm2 start: %v\n%s", err, out)
	}
	health := "http://" + addr + "/healthz"
	if err := waitOK(ctx, http.DefaultClient, health, nil); err != nil {
		t.Fatal(err)
	}
	first, err := p.app(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Env.Status != "online" || first.PID == 0 {
		t.Fatalf("chatd under pm2: %+v", first)
	}

	// kill -9: pm2 notices the exit and starts a new process.
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", first.PID, err)
	}
	var again pm2App
	for {
		again, err = p.app(ctx)
		if err == nil && again.PID != 0 && again.PID != first.PID && again.Env.Status == "online" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pm2 did not restart chatd after kill -9 of %d: last %+v (%v)", first.PID, again, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if again.Env.RestartTime < first.Env.RestartTime+1 {
		t.Errorf("restart count %d -> %d", first.Env.RestartTime, again.Env.RestartTime)
	}
	if err := waitOK(ctx, http.DefaultClient, health, nil); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	t.Logf("pm2 restarted chatd: pid %d -> %d", first.PID, again.PID)

	checkLogrotate(t, ctx, logDir, filepath.Join(tmp, "pm2"), health)

	// A stop is graceful: the server handles pm2's signal (SIGINT) and shuts
	// down by itself, well before kill_timeout would make pm2 SIGKILL it.
	stopStart := time.Now()
	if out, err := p.run(ctx, "stop", "chatd"); err != nil {
		t.Fatalf("pm2 stop: %v\n%s", err, out)
	}
	pm2Log, _ := os.ReadFile(filepath.Join(tmp, "pm2", "pm2.log"))
	if strings.Contains(string(pm2Log), "sending SIGKILL") {
		t.Errorf("pm2 had to SIGKILL chatd on stop:\n%s", tail(filepath.Join(tmp, "pm2", "pm2.log"), 10))
	}
	t.Logf("pm2 stop took %v", time.Since(stopStart).Round(time.Millisecond))

	msgs := checkPM2Log(t, filepath.Join(logDir, "chatd.out.log"))
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, "shutting down") }) {
		t.Errorf("the out log has no shutdown record after pm2 stop; messages: %q", msgs)
	}
}

// pm2Stamp is the time pm2 puts in front of each line (log_date_format
// YYYY-MM-DDTHH:mm:ss.SSSZ in ecosystem.config.js).
var pm2Stamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d: `)

// checkPM2Log checks the out log holds the server's JSON log lines, each
// prefixed with pm2's timestamp, and returns their messages.
func checkPM2Log(t *testing.T, path string) (msgs []string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("pm2 out log: %v", err)
	}
	defer f.Close()
	lines, jsonLines := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		lines++
		loc := pm2Stamp.FindStringIndex(line)
		if loc == nil {
			t.Errorf("log line without pm2's timestamp: %.200s", line)
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line[loc[1]:]), &rec) == nil && rec["time"] != nil && rec["level"] != nil {
			if msg, ok := rec["msg"].(string); ok {
				jsonLines++
				msgs = append(msgs, msg)
			}
		}
	}
	if lines == 0 || jsonLines == 0 {
		t.Fatalf("%s has %d lines, %d of them slog JSON records: want the server's log", path, lines, jsonLines)
	}
	t.Logf("%s: %d lines, %d JSON records", path, lines, jsonLines)
	return msgs
}

// checkLogrotate rotates pm2's log files with deploy/logrotate-chatd (paths
// pointed at the test's log directory and PM2_HOME, its su at the test's
// user) and checks a compressed copy holds the old lines while pm2 keeps
// appending to the truncated file, and that pm2's own pm2.log, which
// pm2-logrotate rotated, is rotated too.
func checkLogrotate(t *testing.T, ctx context.Context, logDir, pm2Home, health string) {
	logrotate := need(t, "logrotate", "apt-get install -y logrotate")
	root := repoRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "logrotate-chatd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "/var/log/chatd/*.log {") {
		t.Fatalf("deploy/logrotate-chatd does not rotate /var/log/chatd/*.log")
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "chatd.logrotate")
	if !strings.Contains(string(conf), "/home/chatd/.pm2/pm2.log ") || !strings.Contains(string(conf), "su chatd chatd") {
		t.Fatalf("deploy/logrotate-chatd does not rotate /home/chatd/.pm2/pm2.log as chatd")
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	group, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	rendered := strings.NewReplacer("/var/log/chatd/", logDir+"/", "/home/chatd/.pm2/", pm2Home+"/",
		"su chatd chatd", "su "+me.Username+" "+group.Name).Replace(string(conf))
	if err := os.WriteFile(confPath, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(logDir, "chatd.out.log"))
	if out, err := run(ctx, nil, dir, logrotate, "--force", "--state", filepath.Join(dir, "state"), confPath); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	rotated, _ := filepath.Glob(filepath.Join(logDir, "chatd.out.log-*.gz"))
	if len(rotated) != 1 {
		t.Fatalf("after logrotate: %v, want one chatd.out.log-*.gz", rotated)
	}
	if own, _ := filepath.Glob(filepath.Join(pm2Home, "pm2.log-*.gz")); len(own) != 1 {
		t.Errorf("after logrotate: %v, want one pm2.log-*.gz in PM2_HOME", own)
	}
	// pm2 may still have been appending the last request's line.
	if got := gunzip(t, rotated[0]); len(before) == 0 || !bytes.HasPrefix(got, before) {
		t.Errorf("%s (%d bytes) does not hold the %d bytes logged before the rotation", rotated[0], len(got), len(before))
	}
	// pm2 goes on writing at the start of the truncated file. A successful
	// health check is logged at debug, so a request logged at info (a
	// sign-in check without a token: 401) makes the line.
	if err := waitOK(ctx, http.DefaultClient, health, nil); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(health, "/healthz")+"/api/auth/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/auth/me: %v", err)
	}
	res.Body.Close()
	out := filepath.Join(logDir, "chatd.out.log")
	for {
		b, _ := os.ReadFile(out)
		if len(b) > 0 {
			if b[0] == 0 {
				t.Fatalf("%s starts with NUL bytes after copytruncate: the writer does not append", out)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("nothing written to %s after the rotation", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("logrotate: %s (%d bytes of log before)", filepath.Base(rotated[0]), len(before))
}

func gunzip(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}
