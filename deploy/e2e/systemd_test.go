package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit checks deploy/chatd.service with systemd-analyze verify
// (pointed at the real binary and a real environment file, since verify
// checks both exist) and that it keeps the settings production relies on.
// Starting the unit needs a running systemd, which this test does not assume.
func TestSystemdUnit(t *testing.T) {
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
	if strings.Contains(text, "\nProcSubset=pid") {
		t.Error("chatd.service has ProcSubset=pid: Go then reads no somaxconn (backlog 128) and /metrics loses process_start_time_seconds")
	}

	// The files chatd reads besides chatd.env reach the dynamic user as
	// credentials: each commented LoadCredential= line names a file in
	// /etc/chatd, and chatd.env.example points a variable at its copy.
	example, err := os.ReadFile(filepath.Join(root, "deploy", "chatd.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	creds := regexp.MustCompile(`(?m)^#LoadCredential=([^:\n]+):/etc/chatd/([^\n]+)$`).FindAllStringSubmatch(text, -1)
	if len(creds) < 7 {
		t.Errorf("chatd.service has %d commented LoadCredential= lines, want one per file chatd reads (7)", len(creds))
	}
	for _, c := range creds {
		if c[1] != c[2] {
			t.Errorf("LoadCredential=%s:/etc/chatd/%s: name the credential as the file", c[1], c[2])
		}
		if !strings.Contains(string(example), "=/run/credentials/chatd.service/"+c[1]) {
			t.Errorf("chatd.env.example names no /run/credentials/chatd.service/%s", c[1])
		}
	}
	withCreds := regexp.MustCompile(`(?m)^#(LoadCredential=)`).ReplaceAllString(text, "$1")

	bin := buildBinary(t, "chatd")
	for _, unit := range []string{text, withCreds} {
		verifyUnit(t, "chatd.service", unit, "chatd.env.example",
			"ExecStart=/usr/local/bin/chatd", "ExecStart="+bin,
			"EnvironmentFile=/etc/chatd/chatd.env", "EnvironmentFile=")
	}
}

// TestNATSSystemdUnit checks deploy/nats-server.service the same way, with
// the real nats-server binary, and that it keeps its hardening, its lame
// duck stop and the environment deploy/nats-server.conf reads.
func TestNATSSystemdUnit(t *testing.T) {
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "deploy", "nats-server.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/nats-server --config /etc/nats/nats-server.conf\n",
		"EnvironmentFile=/etc/nats/nats.env\n", "Environment=NATS_SERVER_NAME=%l\n",
		"KillSignal=SIGUSR2\n", "Restart=on-failure\n", "DynamicUser=yes\n", "StateDirectory=nats\n",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n",
		"PrivateDevices=yes\n", "ProtectKernelTunables=yes\n", "ProtectKernelModules=yes\n",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK\n", "MemoryDenyWriteExecute=yes\n",
		"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("nats-server.service lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(text, "\nProcSubset=pid") {
		t.Error("nats-server.service has ProcSubset=pid: Go then reads no somaxconn (backlog 128)")
	}
	// The store directory the conf names is the unit's StateDirectory.
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "store_dir: /var/lib/nats/") {
		t.Error("nats-server.conf keeps JetStream outside /var/lib/nats, the unit's StateDirectory")
	}
	// The lame duck period fits in the stop timeout.
	if !strings.Contains(string(conf), "lame_duck_duration: 30s\n") || !strings.Contains(text, "TimeoutStopSec=60s\n") {
		t.Error("lame_duck_duration (nats-server.conf) must stay well below TimeoutStopSec (nats-server.service)")
	}
	bin := buildGoBinary(t, "nats-server", "github.com/nats-io/nats-server/v2")
	verifyUnit(t, "nats-server.service", text, "nats.env.example",
		"ExecStart=/usr/local/bin/nats-server", "ExecStart="+bin,
		"EnvironmentFile=/etc/nats/nats.env", "EnvironmentFile=")
}

// verifyUnit runs systemd-analyze verify on unit text (named name) with
// each replacement pair applied; an "EnvironmentFile=" replacement gets a
// copy of deploy/<envExample> appended, since verify checks it exists.
func verifyUnit(t *testing.T, name, text, envExample string, replacements ...string) {
	t.Helper()
	analyze := need(t, "systemd-analyze", "apt-get install -y systemd")
	root := repoRoot(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, strings.TrimSuffix(envExample, ".example"))
	example, err := os.ReadFile(filepath.Join(root, "deploy", envExample))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envFile, example, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(replacements); i += 2 {
		old, new := replacements[i], replacements[i+1]
		if new == "EnvironmentFile=" {
			new += envFile
		}
		if !strings.Contains(text, old) {
			t.Fatalf("%s lacks %q", name, old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := run(ctx, []string{"SYSTEMD_LOG_COLOR=0"}, dir, analyze, "verify", path)
	// verify exits 0 on unknown keys and unparsable values, only warning:
	// any output is a finding.
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", name, err, out)
	}
}
