package ws

import (
	"net/http"
	"strings"
)

// bearerProtocolPrefix marks the subprotocol that carries a browser's token.
const bearerProtocolPrefix = "bearer."

// requestToken finds the token in Authorization: Bearer, or in the
// Sec-WebSocket-Protocol list as bearer.<token>.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, bearerProtocolPrefix) {
				return p[len(bearerProtocolPrefix):]
			}
		}
	}
	return ""
}
