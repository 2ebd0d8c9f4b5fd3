package ws

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestOriginCheck(t *testing.T) {
	proxy := netip.MustParsePrefix("10.0.0.1/32")
	oc := &OriginChecker{Allowed: []string{"https://app.example.org", "tools.example.org"}, TrustedProxies: []netip.Prefix{proxy}}
	tests := []struct {
		name, host, origin, remote, fwdHost string
		want                                bool
	}{
		{"no origin (wscat)", "chat.example.com", "", "1.2.3.4:5", "", true},
		{"same host", "chat.example.com", "https://chat.example.com", "1.2.3.4:5", "", true},
		{"same host and port", "localhost:8080", "http://localhost:8080", "1.2.3.4:5", "", true},
		{"default port left out", "chat.example.com:443", "https://chat.example.com", "1.2.3.4:5", "", true},
		{"other port", "localhost:8080", "http://localhost:3000", "1.2.3.4:5", "", false},
		{"foreign site", "chat.example.com", "https://evil.example", "1.2.3.4:5", "", false},
		{"suffix trick", "chat.example.com", "https://chat.example.com.evil.example", "1.2.3.4:5", "", false},
		{"allowed origin", "chat.example.com", "https://app.example.org", "1.2.3.4:5", "", true},
		{"allowed host", "chat.example.com", "http://tools.example.org", "1.2.3.4:5", "", true},
		{"null origin", "chat.example.com", "null", "1.2.3.4:5", "", false},
		{"forwarded host from a trusted proxy", "127.0.0.1:8080", "https://chat.example.com", "10.0.0.1:5", "chat.example.com", true},
		{"forwarded host from anyone else", "127.0.0.1:8080", "https://evil.example", "1.2.3.4:5", "evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.Host, r.RemoteAddr = tt.host, tt.remote
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.fwdHost != "" {
				r.Header.Set("X-Forwarded-Host", tt.fwdHost)
			}
			if got := oc.Check(r); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRequestToken: the token comes from Authorization: Bearer or the
// bearer.<token> subprotocol; a request with more than one (two
// subprotocols, or one beside the header) is refused with invalid_request,
// where the header or the first subprotocol won silently.
func TestRequestToken(t *testing.T) {
	tests := []struct {
		name, auth, protocols, want string
		refused                     bool
	}{
		{"bearer header", "Bearer abc.def.ghi", "", "abc.def.ghi", false},
		{"lower-case scheme", "bearer abc", "", "abc", false},
		{"subprotocol", "", "chat.v1, bearer.abc.def", "abc.def", false},
		{"header beside a subprotocol", "Bearer h", "chat.v1, bearer.p", "", true},
		{"two subprotocols", "", "bearer.a, chat.v1, bearer.b", "", true},
		{"the same twice", "", "bearer.a, bearer.a", "", true},
		{"basic auth is no token", "Basic dXNlcjpwYXNz", "", "", false},
		{"nothing", "", "chat.v1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.protocols != "" {
				r.Header.Set("Sec-WebSocket-Protocol", tt.protocols)
			}
			got, e := requestToken(r)
			if got != tt.want || (e != nil) != tt.refused {
				t.Fatalf("token %q, error %v; want %q, refused %v", got, e, tt.want, tt.refused)
			}
			if tt.refused && (e.Status != http.StatusBadRequest || e.BearerError != "invalid_request") {
				t.Fatalf("refusal %+v, want 400 invalid_request", e)
			}
		})
	}
}
