// Package headers reads HTTP header fields that list comma-separated
// tokens (Accept, Connection, Upgrade), for the transports.
package headers

import (
	"net/http"
	"strings"
)

// HasToken reports whether one of h's name lines lists token, in any
// case, ignoring the parameters after a ";" (Accept's q=).
func HasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if t, _, _ := strings.Cut(strings.TrimSpace(part), ";"); strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
