package transport

import (
	"log/slog"
	"net/netip"
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
func untrustedProxy(logger *slog.Logger) gin.HandlerFunc {
	var once sync.Once
	return func(c *gin.Context) {
		h := c.Request.Header
		if h.Get("X-Forwarded-For") != "" || h.Get("X-Real-IP") != "" {
			peer, err := netip.ParseAddr(c.RemoteIP())
			if err == nil && (peer.IsLoopback() || peer.IsPrivate()) && c.ClientIP() == c.RemoteIP() {
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
