package main

import (
	"bytes"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"chatd/transport/api"
)

// TestProxyTimeoutWarning: behind a proxy, a CHATD_REQUEST_TIMEOUT longer
// than the shipped nginx.conf's /api/ read timeout allows is said at
// start-up with the read timeout it needs; the default, or no proxy, says
// nothing.
func TestProxyTimeoutWarning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		timeout time.Duration
		proxies []string
		want    string // the needed read timeout; "": no warning
	}{
		{"default behind nginx", api.DefaultRequestTimeout, []string{"127.0.0.1"}, ""},
		{"shorter behind nginx", 5 * time.Second, []string{"127.0.0.1"}, ""},
		{"a little longer", 30*time.Second + 100*time.Millisecond, []string{"127.0.0.1"}, "36s"},
		{"two minutes", 2 * time.Minute, []string{"127.0.0.1", "::1"}, "125s"},
		{"no proxy", 2 * time.Minute, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&out, nil))
			warnProxyTimeout(Config{RequestTimeout: c.timeout, TrustedProxies: c.proxies}, logger)
			switch {
			case c.want == "" && out.Len() > 0:
				t.Errorf("warned: %s", out.String())
			case c.want != "" && !strings.Contains(out.String(), `"proxy_read_timeout_needed":"`+c.want+`"`):
				t.Errorf("want a warning naming %s, got: %s", c.want, out.String())
			case c.want != "" && !strings.Contains(out.String(), "render-nginx.sh --request-timeout "+c.timeout.String()):
				t.Errorf("the warning does not say how to render the fix: %s", out.String())
			}
		})
	}
}

// TestShippedNginxReadTimeout: the read timeouts nginx.conf ships for the
// REST API and the SSE routes let chatd answer first at the default
// CHATD_REQUEST_TIMEOUT, and /api/'s is the one the start-up warning
// compares with.
func TestShippedNginxReadTimeout(t *testing.T) {
	t.Parallel()
	conf, err := os.ReadFile("../../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	need := proxyReadTimeout(api.DefaultRequestTimeout)
	for _, loc := range []string{`location /api/ {`, `location ~ ^/api/(events|`} {
		got := locationReadTimeout(t, string(conf), loc)
		if got < need {
			t.Errorf("nginx.conf: %s: proxy_read_timeout %s, chatd may take %s to answer at the default CHATD_REQUEST_TIMEOUT", loc, got, need)
		}
		if loc == `location /api/ {` && got != shippedAPIReadTimeout {
			t.Errorf("nginx.conf: %s: proxy_read_timeout %s, the start-up warning assumes %s", loc, got, shippedAPIReadTimeout)
		}
	}
}

// locationReadTimeout is the proxy_read_timeout set in the nginx location
// block that starts with loc.
func locationReadTimeout(t *testing.T, conf, loc string) time.Duration {
	t.Helper()
	i := strings.Index(conf, loc)
	if i < 0 {
		t.Fatalf("nginx.conf has no %q", loc)
	}
	block := conf[i:]
	block = block[:strings.Index(block, "}")]
	m := regexp.MustCompile(`proxy_read_timeout (\d+)s;`).FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("nginx.conf: %s sets no proxy_read_timeout", loc)
	}
	d, err := time.ParseDuration(m[1] + "s")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStartWarnsOfProxyTimeout: run says it at start-up.
func TestStartWarnsOfProxyTimeout(t *testing.T) {
	t.Parallel()
	s := start(t, testEnv(t.TempDir(), "CHATD_REQUEST_TIMEOUT", "2m", "CHATD_TRUSTED_PROXIES", "127.0.0.1"))
	if !strings.Contains(s.logs.String(), `"proxy_read_timeout_needed":"125s"`) {
		t.Errorf("no warning of nginx's read timeout at start-up:\n%s", s.logs)
	}
}
