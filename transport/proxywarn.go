package transport

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// untrustedProxy warns once, in the log, when a request carries
// X-Forwarded-For or X-Real-IP from a loopback or private address whose
// headers are not believed (RouterOptions.TrustedProxies does not name
// it): a reverse proxy the operator forgot to list. Behind it every
// client has the proxy's address, so the per-address limits (failed
// logins, sign-ups) are shared by everyone: one client's guesses lock
// every user out of signing in. A public peer sending the header is a
// client, not a proxy, and is left alone.
func untrustedProxy(logger *slog.Logger, trusted []string) gin.HandlerFunc {
	listed := trustedPrefixes(trusted)
	var once sync.Once
	return func(c *gin.Context) {
		h := c.Request.Header
		if h.Get("X-Forwarded-For") != "" || h.Get("X-Real-IP") != "" {
			peer, err := netip.ParseAddr(c.RemoteIP())
			if err == nil && (peer.IsLoopback() || peer.IsPrivate()) && !slices.ContainsFunc(listed, func(p netip.Prefix) bool {
				return p.Contains(peer.Unmap())
			}) {
				once.Do(func() {
					logger.Warn("a request came through a proxy that is not trusted: every client it forwards "+
						"shares its address in the per-address login and sign-up limits; name it in CHATD_TRUSTED_PROXIES",
						slog.String("proxy", peer.Unmap().String()))
				})
			}
		}
		c.Next()
	}
}

// trustedPrefixes are RouterOptions.TrustedProxies as prefixes (an
// address is its own /32 or /128); gin has checked them already, so an
// entry that does not parse is left out.
func trustedPrefixes(trusted []string) []netip.Prefix {
	var out []netip.Prefix
	for _, t := range trusted {
		if strings.Contains(t, "/") {
			if p, err := netip.ParsePrefix(t); err == nil {
				out = append(out, p.Masked())
			}
		} else if a, err := netip.ParseAddr(t); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}
