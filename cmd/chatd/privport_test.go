package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// nobodyUID is the user the privileged-port test runs chatd as when the
// tests run as root (Debian's nobody).
const nobodyUID = 65534

// TestPrivilegedPort: a CHATD_ADDR on a port below the kernel's first
// unprivileged one (1024), given to a user without the privilege, stops
// the start with a message naming CHATD_ADDR, the reason and the fix. As
// root (CI) chatd runs as a child process of user nobody, the way a
// newcomer who is not root runs it; otherwise in this process.
func TestPrivilegedPort(t *testing.T) {
	t.Parallel()
	first, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skipf("no first unprivileged port to read: %v", err)
	}
	start, err := strconv.Atoi(strings.TrimSpace(string(first)))
	if err != nil || start < 2 {
		t.Skipf("every port is open to every user here (ip_unprivileged_port_start %q)", first)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(start-1))
	want := []string{"CHATD_ADDR: " + addr + " needs privileges this user lacks (ports below 1024 do)",
		"listen on a port from 1024 up, e.g. CHATD_ADDR=:8080", "permission denied"}
	var got string
	if os.Geteuid() == 0 {
		got = runAsNobody(t, addr)
	} else {
		err := run(context.Background(), envOf(testEnv(t.TempDir(), "CHATD_ADDR", addr)), io.Discard,
			func(net.Addr) { t.Error("it listened") })
		if err == nil {
			t.Fatal("started")
		}
		got = err.Error()
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, got)
		}
	}
}

// runAsNobody runs chatd (this test binary's main) as user nobody on addr
// and returns what it wrote, once it has stopped with exit status 1.
func runAsNobody(t *testing.T, addr string) string {
	t.Helper()
	// The test binary lives in a directory only root may enter: nobody
	// runs a copy in one everybody may.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for d := filepath.Dir(filepath.Dir(dir)); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("nobody cannot reach the temporary directory %s (%s is closed to others): set TMPDIR to one it can", dir, d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	bin := filepath.Join(dir, "chatd")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", envRunMain + "=1", "CHATD_ADDR=" + addr,
		"CHATD_DATA_DIR=" + filepath.Join(dir, "data")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID}}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("chatd as nobody on %s ended with %v, want exit status 1; output:\n%s", addr, err, out)
	}
	return string(out)
}
