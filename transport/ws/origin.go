package ws

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// OriginChecker decides whether a browser's Origin may open the live
// channel. Requests without an Origin header (wscat, curl, servers) pass:
// the check protects browsers' cookies-free but token-bearing pages from
// being driven by a foreign site.
type OriginChecker struct {
	// Allowed lists extra origins, as "https://host[:port]" or a bare host.
	Allowed []string
	// TrustedProxies are the addresses whose X-Forwarded-Host is
	// believed (X-Forwarded-Proto is not read: the origin's own scheme
	// gives the default port).
	TrustedProxies []netip.Prefix
}

// Check reports whether r's Origin is the request's own host (as the
// client addressed it), or one of the allowed origins.
func (o *OriginChecker) Check(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, a := range o.Allowed {
		if strings.EqualFold(a, origin) || strings.EqualFold(a, u.Host) {
			return true
		}
	}
	return sameHost(u, o.requestHost(r))
}

// requestHost is the host the client addressed: Host, or X-Forwarded-Host
// when the request came through a trusted proxy.
func (o *OriginChecker) requestHost(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" && o.fromTrustedProxy(r) {
		return strings.TrimSpace(strings.Split(fwd, ",")[0])
	}
	return r.Host
}

func (o *OriginChecker) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range o.TrustedProxies {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// sameHost compares the origin's host with the request's, filling in the
// origin scheme's default port where one side leaves it out.
func sameHost(origin *url.URL, host string) bool {
	if strings.EqualFold(origin.Host, host) {
		return true
	}
	oh, op := splitPort(origin.Host, origin.Scheme)
	hh, hp := splitPort(host, origin.Scheme)
	return strings.EqualFold(oh, hh) && op == hp
}

func splitPort(hostport, scheme string) (host, port string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		h, p = hostport, ""
	}
	if p == "" {
		p = map[string]string{"https": "443", "wss": "443"}[scheme]
		if p == "" {
			p = "80"
		}
	}
	return strings.Trim(h, "[]"), p
}
