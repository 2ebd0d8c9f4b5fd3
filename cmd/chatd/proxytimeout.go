package main

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// shippedAPIReadTimeout is the proxy_read_timeout of nginx.conf's
// location /api/ as shipped; TestShippedNginxReadTimeout reads the file.
const shippedAPIReadTimeout = 35 * time.Second

// proxyReadTimeout is the read timeout a reverse proxy needs in front of
// the REST API so that chatd, not the proxy, answers a request that
// waited on the database: a request (the token check and the route
// together) waits requestTimeout (CHATD_REQUEST_TIMEOUT) at most, and 5 s
// are left for the answer to reach the proxy (a password hash past the
// bound, the answer's write). deploy/render-nginx.sh --request-timeout
// derives nginx's value the same way.
func proxyReadTimeout(requestTimeout time.Duration) time.Duration {
	return requestTimeout + 5*time.Second
}

// warnProxyTimeout says at start-up, behind a proxy (CHATD_TRUSTED_PROXIES
// set), when CHATD_REQUEST_TIMEOUT is longer than the shipped nginx.conf
// waits for an answer on /api/: nginx would answer 504 before chatd's own
// 503, unless its proxy_read_timeout was raised too.
func warnProxyTimeout(cfg Config, logger *slog.Logger) {
	need := proxyReadTimeout(cfg.RequestTimeout)
	if len(cfg.TrustedProxies) == 0 || need <= shippedAPIReadTimeout {
		return
	}
	secs := func(d time.Duration) string { return fmt.Sprintf("%ds", int64(math.Ceil(d.Seconds()))) }
	logger.Warn(fmt.Sprintf("CHATD_REQUEST_TIMEOUT is %s: a request may wait up to %s before chatd answers, longer than the %s "+
		"the shipped nginx.conf waits on /api/ (proxy_read_timeout), so nginx would answer 504 first; "+
		"raise that to at least %[2]s (deploy/render-nginx.sh --request-timeout %[1]s does; docs/deploy.md)",
		cfg.RequestTimeout, secs(need), secs(shippedAPIReadTimeout)),
		slog.String("request_timeout", cfg.RequestTimeout.String()),
		slog.String("proxy_read_timeout_needed", secs(need)))
}
