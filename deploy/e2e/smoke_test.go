package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSmokeTLSVersions runs deploy/smoke.sh's TLS checks against an openssl
// s_server that accepts TLS 1.1 alone, then TLS 1.2 alone. smoke.sh must
// tell them apart: the curl of Debian 12 (OpenSSL 3) refuses TLS 1.1 by
// itself at its default security level, so a probe that did not lower it
// failed the handshake on its own side and said "TLS 1.1 refused" of any
// server.
func TestSmokeTLSVersions(t *testing.T) {
	t.Parallel()
	need(t, "curl", "apt-get install -y curl")
	openssl := need(t, "openssl", "apt-get install -y openssl")
	root := repoRoot(t)
	for _, tc := range []struct {
		version string // s_server's flag
		want    []string
	}{
		{"-tls1_1", []string{"FAIL TLS 1.1 accepted", "FAIL TLS 1.2 handshake failed"}},
		{"-tls1_2", []string{"ok   TLS 1.1 refused", "ok   TLS 1.2 accepted"}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certFile, keyFile, _ := selfSigned(t, dir)
			port := freePort(t)
			p := startProc(t, "s_server", nil, dir, openssl, "s_server", "-quiet", "-www",
				"-accept", "127.0.0.1:"+strconv.Itoa(port), "-cert", certFile, "-key", keyFile,
				tc.version, "-cipher", "DEFAULT:@SECLEVEL=0")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			for {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err == nil {
					c.Close()
					break
				}
				if err := p.exited(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-ctx.Done():
					t.Fatalf("s_server does not listen on %s: %v", addr, err)
				case <-time.After(100 * time.Millisecond):
				}
			}
			// The plain-HTTP URL names a port nothing listens on: its checks
			// fail at once, and only the TLS lines matter here.
			out, _ := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "smoke.sh"),
				"--cacert", certFile, "https://"+addr, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
			for _, want := range tc.want {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("smoke.sh against s_server %s does not say %q:\n%s", tc.version, want, out)
				}
			}
		})
	}
}
