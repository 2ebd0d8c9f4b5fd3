package ws

import (
	"net/http"
	"strings"

	"chatd/transport/httperr"
)

// bearerProtocolPrefix marks the subprotocol that carries a browser's token.
const bearerProtocolPrefix = "bearer."

// requestToken finds the token in Authorization: Bearer, or in the
// Sec-WebSocket-Protocol list as bearer.<token>. A request carrying more
// than one (two bearer subprotocols, or one beside the header) is refused
// as RFC 6750 asks (400 invalid_request): which one would count is
// nobody's guess, and the first one won silently.
func requestToken(r *http.Request) (string, *httperr.Error) {
	var tokens []string
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tokens = append(tokens, strings.TrimSpace(h[7:]))
	}
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, bearerProtocolPrefix) {
				tokens = append(tokens, p[len(bearerProtocolPrefix):])
			}
		}
	}
	switch len(tokens) {
	case 0:
		return "", nil
	case 1:
		return tokens[0], nil
	}
	return "", httperr.InvalidRequest("more than one token: send one, in Authorization: Bearer or as the subprotocol bearer.<token>")
}
