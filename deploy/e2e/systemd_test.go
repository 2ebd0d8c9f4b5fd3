package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit checks deploy/chatd.service with systemd-analyze verify
// (pointed at the real binary and a real environment file, since verify
// checks both exist) and that it keeps the settings production relies on.
// Starting the unit needs a running systemd, which this test does not assume.
func TestSystemdUnit(t *testing.T) {
	analyze := need(t, "systemd-analyze", "apt-get install -y systemd")
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "deploy", "chatd.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/chatd\n", "EnvironmentFile=/etc/chatd/chatd.env\n",
		"Restart=on-failure\n", "RestartSec=", "DynamicUser=yes\n", "StateDirectory=chatd\n",
		"KillSignal=SIGTERM\n", "TimeoutStopSec=45s\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
		"ProtectHome=yes\n", "PrivateTmp=yes\n", "PrivateDevices=yes\n", "ProtectKernelTunables=yes\n",
		"ProtectKernelModules=yes\n", "ProtectKernelLogs=yes\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n",
		"LockPersonality=yes\n", "MemoryDenyWriteExecute=yes\n", "CapabilityBoundingSet=\n",
		"SystemCallFilter=@system-service\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("chatd.service lacks %q", strings.TrimSpace(want))
		}
	}

	dir := t.TempDir()
	envFile := filepath.Join(dir, "chatd.env")
	example, err := os.ReadFile(filepath.Join(root, "deploy", "chatd.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envFile, example, 0o600); err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "ExecStart=/usr/local/bin/chatd", "ExecStart="+buildBinary(t, "chatd"), 1)
	text = strings.Replace(text, "EnvironmentFile=/etc/chatd/chatd.env", "EnvironmentFile="+envFile, 1)
	path := filepath.Join(dir, "chatd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := run(ctx, []string{"SYSTEMD_LOG_COLOR=0"}, dir, analyze, "verify", path)
	// verify exits 0 on unknown keys and unparsable values, only warning:
	// any output is a finding.
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify chatd.service: %v\n%s", err, out)
	}
}
