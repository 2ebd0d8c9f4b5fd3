package ws

import (
	"net/http"
	"strings"

	"chatd/hub/protocol"
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

// checkSubprotocols refuses (400 bad_request) an upgrade that offers
// subprotocols, bearer.<token> aside, none of them protocol.Name: the
// client asks for a protocol this server does not speak (a later version),
// and would otherwise be sent chat.v1 frames it did not ask for. Offering
// none (wscat, a token in Authorization) speaks chat.v1.
func checkSubprotocols(r *http.Request) *httperr.Error {
	offered := false
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			switch p = strings.TrimSpace(p); {
			case strings.EqualFold(p, protocol.Name): // as the upgrade (websocket.Accept) matches it
				return nil
			case p != "" && !strings.HasPrefix(p, bearerProtocolPrefix):
				offered = true
			}
		}
	}
	if offered {
		return httperr.New(http.StatusBadRequest, httperr.CodeBadRequest,
			"unsupported subprotocol: this server speaks "+protocol.Name+" (offer it in Sec-WebSocket-Protocol, or offer none)")
	}
	return nil
}
