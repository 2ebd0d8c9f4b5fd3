package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testDomain is the server_name the test renders; it resolves to loopback
// everywhere, and the test's clients dial 127.0.0.1 anyway.
const testDomain = "localhost"

// selfSigned writes a fresh self-signed ECDSA certificate for testDomain and
// 127.0.0.1 into dir and returns a pool that trusts it.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: testDomain},
		DNSNames:              []string{testDomain},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER, 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// nginxSite is a running nginx with the rendered configuration.
type nginxSite struct {
	HTTPPort, HTTPSPort int
	Conf                string // the rendered configuration file
	CertFile            string // the self-signed certificate (PEM)
	Prefix              string
	Pool                *x509.CertPool
	proc                *proc
}

// nginxOptions are the values the test substitutes into nginx.conf.
type nginxOptions struct {
	Root          string // static root (a built front end)
	Upstream      string // host:port of chatd
	WSReadTimeout int    // seconds; 0 keeps the file's value
}

// Origin is the browser origin of the HTTPS site.
func (s *nginxSite) Origin() string {
	return fmt.Sprintf("https://%s:%d", testDomain, s.HTTPSPort)
}

// startNginx renders nginx.conf with deploy/render-nginx.sh, checks it with
// nginx -t and runs it in the foreground until the test ends.
func startNginx(t *testing.T, o nginxOptions) *nginxSite {
	t.Helper()
	nginx := need(t, "nginx", "apt-get update && apt-get install -y nginx")
	root := repoRoot(t)
	prefix := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, prefix)
	s := &nginxSite{HTTPPort: freePort(t), HTTPSPort: freePort(t), Prefix: prefix, Pool: pool, CertFile: certFile}
	s.Conf = filepath.Join(prefix, "nginx.conf")
	args := []string{
		"bash", filepath.Join(root, "deploy", "render-nginx.sh"),
		"--domain", testDomain, "--listen-addr", "127.0.0.1",
		"--http-port", strconv.Itoa(s.HTTPPort), "--https-port", strconv.Itoa(s.HTTPSPort),
		"--prefix", prefix, "--cert", certFile, "--key", keyFile,
		"--root", o.Root, "--upstream", o.Upstream, "-o", s.Conf,
	}
	if os.Geteuid() == 0 {
		// Workers would otherwise drop to www-data, which cannot read the
		// test's private temporary directories.
		args = append(args, "--user", "root")
	} else {
		args = append(args, "--no-user")
	}
	if o.WSReadTimeout > 0 {
		args = append(args, "--ws-read-timeout", strconv.Itoa(o.WSReadTimeout))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := run(ctx, nil, root, args...); err != nil {
		t.Fatalf("render nginx.conf: %v\n%s", err, out)
	}
	if out, err := run(ctx, nil, prefix, nginx, "-t", "-p", prefix, "-c", s.Conf); err != nil {
		t.Fatalf("nginx -t rejects the rendered nginx.conf: %v\n%s", err, out)
	}
	s.proc = startProc(t, "nginx", nil, prefix, nginx, "-p", prefix, "-c", s.Conf, "-g", "daemon off;")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- nginx error.log:\n%s", tail(filepath.Join(prefix, "error.log"), 30))
		}
	})
	// nginx is up when the HTTP port answers its redirect.
	c := s.Client(false)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(fmt.Sprintf("http://%s:%d/", testDomain, s.HTTPPort))
		if err == nil {
			resp.Body.Close()
			break
		}
		if perr := s.proc.exited(); perr != nil {
			t.Fatal(perr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on port %d: %v", s.HTTPPort, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Client returns an HTTP client that trusts the test certificate and dials
// 127.0.0.1 whatever the host name, with HTTP/2 over TLS like a browser
// (h2 false: HTTP/1.1 only, as a WebSocket needs).
func (s *nginxSite) Client(h2 bool) *http.Client {
	return s.clientFrom(h2, nil)
}

// clientFrom is Client with connections from a given local address.
func (s *nginxSite) clientFrom(h2 bool, local net.Addr) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:     &tls.Config{RootCAs: s.Pool, ServerName: testDomain},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 4,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// URL is an https URL on the site.
func (s *nginxSite) URL(path string) string {
	return s.Origin() + path
}

// TestShippedNginxConf checks nginx.conf as shipped, with its production
// ports, IPv6 listeners, worker user and upstream, changing only the
// certificate paths (the real ones do not exist here) and pid, log and
// temporary paths (to stay out of the system's nginx).
func TestShippedNginxConf(t *testing.T) {
	nginx := need(t, "nginx", "apt-get update && apt-get install -y nginx")
	root := repoRoot(t)
	prefix := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, prefix)
	conf := filepath.Join(prefix, "nginx.conf")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "render-nginx.sh"),
		"--cert", certFile, "--key", keyFile, "--prefix", prefix, "-o", conf); err != nil {
		t.Fatalf("render: %v\n%s", err, out)
	}
	out, err := run(ctx, nil, prefix, nginx, "-t", "-p", prefix, "-c", conf)
	if err != nil {
		t.Fatalf("nginx -t rejects nginx.conf: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case !strings.Contains(line, "[warn]"):
		case os.Geteuid() != 0 && strings.Contains(line, `"user" directive`):
			// As non-root, nginx ignores "user", saying so.
		case strings.Contains(line, `"listen ... http2" directive is deprecated`):
			// nginx >= 1.25.1; the file keeps the syntax Debian 12's 1.22 needs.
			t.Logf("nginx -t: %s (see the note at the top of nginx.conf)", line)
		default:
			t.Errorf("nginx -t: %s", line)
		}
	}
}

// TestNginxDescriptorsCoverConnections checks nginx.conf raises each
// worker's descriptor limit above worker_connections: without
// worker_rlimit_nofile a worker keeps the soft limit it inherits (1024
// under Debian's nginx.service), about 500 proxied WebSockets.
func TestNginxDescriptorsCoverConnections(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	value := func(directive string) int {
		m := regexp.MustCompile(`(?m)^\s*` + directive + `\s+(\d+);`).FindSubmatch(conf)
		if m == nil {
			t.Fatalf("nginx.conf has no %s", directive)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	conns, files := value("worker_connections"), value("worker_rlimit_nofile")
	if files < 2*conns {
		t.Errorf("worker_rlimit_nofile %d < 2 x worker_connections %d: no room for files and logs", files, conns)
	}
}

// TestRenderRefusesDrift checks render-nginx.sh fails, naming the value,
// when nginx.conf no longer holds a value it is asked to replace, rather
// than printing a configuration that silently keeps the old value.
func TestRenderRefusesDrift(t *testing.T) {
	root := repoRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	drifted := filepath.Join(t.TempDir(), "nginx.conf")
	changed := strings.ReplaceAll(string(conf), "/srv/chatd/frontend", "/srv/elsewhere")
	if err := os.WriteFile(drifted, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "render-nginx.sh"),
		"-i", drifted, "--root", "/tmp/x")
	if err == nil || !strings.Contains(out, "root /srv/chatd/frontend;") {
		t.Fatalf("render of a drifted nginx.conf: err %v, output:\n%.500s", err, out)
	}
	// Unchanged values are fine with the same input.
	if out, err := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "render-nginx.sh"),
		"-i", drifted, "--domain", "chat.example.org"); err != nil || strings.Contains(out, "chat.example.com") {
		t.Fatalf("render --domain: %v\n%.300s", err, out)
	}
}

// TestRenderDerivesReadTimeouts checks render-nginx.sh --request-timeout:
// the read timeout of /api/ (and of its twin /api/conversations) becomes
// CHATD_REQUEST_TIMEOUT + 5 s, what chatd may take before it answers (the
// token check and the route together), and that of the SSE routes the same when longer than theirs (an answer's
// start there shares that one deadline), so nginx never answers 504 first;
// a value chatd would not take is refused.
func TestRenderDerivesReadTimeouts(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	cases := []struct {
		timeout  string
		api, sse string // proxy_read_timeout of /api/ and of the SSE routes
	}{
		{"", "35s", "600s"},
		{"30s", "35s", "600s"}, // the default: nginx.conf as shipped
		{"10s", "35s", "600s"}, // never below the shipped values
		{"31s", "36s", "600s"},
		{"1m30s", "95s", "600s"},
		{"2m", "125s", "600s"},
		{"30100ms", "36s", "600s"},
		{"5m", "305s", "600s"},
		{"10m", "605s", "605s"},
	}
	for _, c := range cases {
		t.Run("timeout "+c.timeout, func(t *testing.T) {
			t.Parallel()
			args := []string{"bash", filepath.Join(root, "deploy", "render-nginx.sh")}
			if c.timeout != "" {
				args = append(args, "--request-timeout", c.timeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := run(ctx, nil, root, args...)
			if err != nil {
				t.Fatalf("render: %v\n%s", err, out)
			}
			for loc, want := range map[string]string{"location /api/ {": c.api, "location = /api/conversations {": c.api, "location ~ ^/api/(events|": c.sse,
				"location = /ws {": "3600s", "proxy_connect_timeout": "60s"} {
				if got := readTimeoutAfter(t, out, loc); got != want {
					t.Errorf("%s: proxy_read_timeout %s, want %s", loc, got, want)
				}
			}
		})
	}
	for _, bad := range []string{"1.5m", "abc", "30", "-1m", "2m junk"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := run(ctx, nil, root, "bash", filepath.Join(root, "deploy", "render-nginx.sh"), "--request-timeout", bad)
		cancel()
		if err == nil || !strings.Contains(out, "--request-timeout") || strings.Contains(out, "proxy_pass") {
			t.Errorf("--request-timeout %q: err %v, output:\n%.300s", bad, err, out)
		}
	}
}

// readTimeoutAfter is the value of the first proxy_read_timeout after
// marker in conf (the server-level one follows proxy_connect_timeout).
func readTimeoutAfter(t *testing.T, conf, marker string) string {
	t.Helper()
	i := strings.Index(conf, marker)
	if i < 0 {
		t.Fatalf("no %q in the rendered configuration", marker)
	}
	m := regexp.MustCompile(`proxy_read_timeout (\w+);`).FindStringSubmatch(conf[i:])
	if m == nil {
		t.Fatalf("no proxy_read_timeout after %q", marker)
	}
	return m[1]
}

// TestScriptsHelp checks that --help prints each script's leading comment,
// all of it and nothing of the code after it.
func TestScriptsHelp(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, script := range []string{"render-nginx.sh", "nginx-local.sh", "smoke.sh"} {
		path := filepath.Join(root, "deploy", script)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, line := range strings.Split(string(src), "\n")[1:] {
			if !strings.HasPrefix(line, "#") {
				break
			}
			want = append(want, line)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := run(ctx, nil, root, "bash", path, "--help")
		cancel()
		if err != nil || strings.TrimRight(out, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s --help: err %v, printed:\n%s\nwant its comment:\n%s", script, err, out, strings.Join(want, "\n"))
		}
	}
}
