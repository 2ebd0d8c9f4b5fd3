package frontend

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// nginxHeader matches an add_header of nginx.conf with a literal value.
var nginxHeader = regexp.MustCompile(`(?m)^\s*add_header\s+(\S+)\s+"([^"]*)"\s+always;`)

// nginxHeaders returns the headers nginx.conf adds to every answer with a
// literal value (Cache-Control, chosen by a map, is tested by TestHandler).
func nginxHeaders(t *testing.T) map[string]string {
	t.Helper()
	conf, err := os.ReadFile("../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, m := range nginxHeader.FindAllStringSubmatch(string(conf), -1) {
		headers[m[1]] = m[2]
	}
	if len(headers) < 5 || headers["Content-Security-Policy"] == "" {
		t.Fatalf("nginx.conf: found only %v", headers)
	}
	return headers
}

// cspDirectives returns a policy's directives by name, each with its sources.
func cspDirectives(policy string) map[string]string {
	ds := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, sources, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			ds[name] = strings.TrimSpace(sources)
		}
	}
	return ds
}

// TestPageHeadersMatchNginx: chatd's pages carry nginx.conf's security
// headers with the same values, so a deployment without the proxy is as
// strict, but for what belongs to whoever terminates TLS (HSTS, the CSP's
// upgrade-insecure-requests) and connect-src, where nginx names the public
// wss:// host and chatd has 'self' alone. Before, chatd sent no
// Cross-Origin-Opener-Policy or Permissions-Policy, and its CSP had no
// style-src-elem (inline <style> elements allowed) and another base-uri.
func TestPageHeadersMatchNginx(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testFS(), Options{}))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/c/0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	nginx := nginxHeaders(t)
	for name, want := range nginx {
		got := res.Header.Values(name)
		switch name {
		case "Strict-Transport-Security":
			if len(got) != 0 {
				t.Errorf("%s %q: the TLS terminator's to send", name, got)
			}
		case "Content-Security-Policy":
			if len(got) != 1 {
				t.Fatalf("%d %s headers, want 1", len(got), name)
			}
			comparePolicies(t, got[0], want)
		default:
			if len(got) != 1 || got[0] != want {
				t.Errorf("%s %q, want %q as nginx.conf sends", name, got, want)
			}
		}
	}
	for _, h := range pageHeaders {
		if _, ok := nginx[h.name]; !ok {
			t.Errorf("chatd sends %s, nginx.conf does not", h.name)
		}
	}
}

// comparePolicies checks chatd's CSP has nginx's directives, each with the
// same sources, and no other: connect-src is 'self' alone, and
// upgrade-insecure-requests nginx's only.
func comparePolicies(t *testing.T, chatd, nginx string) {
	t.Helper()
	ours, theirs := cspDirectives(chatd), cspDirectives(nginx)
	if c := theirs["connect-src"]; !strings.HasPrefix(c, "'self' wss://") {
		t.Errorf("nginx.conf connect-src %q: the test expects 'self' and the public wss:// host", c)
	}
	theirs["connect-src"] = "'self'"
	delete(theirs, "upgrade-insecure-requests")
	names := make([]string, 0, len(ours)+len(theirs))
	for n := range ours {
		names = append(names, n)
	}
	for n := range theirs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		got, inOurs := ours[n]
		want, inTheirs := theirs[n]
		if !inOurs || !inTheirs || got != want {
			t.Errorf("CSP %s: chatd %q (present %v), nginx.conf %q (present %v)", n, got, inOurs, want, inTheirs)
		}
	}
}
