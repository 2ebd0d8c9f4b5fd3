package ws_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestBadHandshakeAnsweredJSON: a request to the WebSocket route that the
// handshake refuses (no upgrade at all, a method other than GET, a bad
// version or key) is answered with the API's JSON error and the
// library's status, not a plain-text message, and frees its connection
// slot.
func TestBadHandshakeAnsweredJSON(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	with := func(changes map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range upgrade {
			h[k] = v
		}
		for k, v := range changes {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name, method string
		header       map[string]string
		status       int
		code         string
	}{
		{"no upgrade", "GET", nil, http.StatusUpgradeRequired, "bad_request"},
		{"a POST", "POST", upgrade, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"an old version", "GET", with(map[string]string{"Sec-WebSocket-Version": "8"}), http.StatusBadRequest, "bad_request"},
		{"a bad key", "GET", with(map[string]string{"Sec-WebSocket-Key": "short"}), http.StatusBadRequest, "bad_request"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, s.srv.URL, nil)
		req.Header.Set("Authorization", "Bearer token-u")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		res, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var body struct {
			Error struct{ Code, Message string }
		}
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(data, &body) != nil || body.Error.Code != tc.code || body.Error.Message == "" {
			t.Errorf("%s: %d %q %s, want %d JSON %s", tc.name, res.StatusCode, res.Header.Get("Content-Type"), data, tc.status, tc.code)
		}
	}
	if users := s.limits.ConnectedUsers(); len(users) != 0 {
		t.Fatalf("slots still held by %v", users)
	}
}

// TestTwoAuthorizationHeadersRefused: an upgrade carrying two
// Authorization headers is malformed (RFC 6750 3.1): 400 bad_request with
// a challenge naming invalid_request, whichever of them is good, nothing
// upgraded; one header upgrades as before. Before, the first header won: a
// good token followed by junk was let in, junk followed by a good one
// refused with 401.
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	for _, tc := range []struct {
		name    string
		auths   []string
		refused bool
	}{
		{"good alone", []string{"Bearer token-u"}, false},
		{"good then junk", []string{"Bearer token-u", "Bearer junk"}, true},
		{"junk then good", []string{"Bearer junk", "Bearer token-u"}, true},
		{"good twice", []string{"Bearer token-u", "Bearer token-u"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			h := http.Header{"Authorization": tc.auths}
			c, res, err := websocket.Dial(ctx, s.url(), &websocket.DialOptions{HTTPHeader: h})
			if !tc.refused {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("upgraded")
			}
			if res == nil || res.StatusCode != http.StatusBadRequest {
				t.Fatalf("dial: %v (%+v), want 400", err, res)
			}
			if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="chatd", error="invalid_request"`) {
				t.Fatalf("WWW-Authenticate %q, want a Bearer challenge naming invalid_request", ch)
			}
		})
	}
}

// TestHeadUpgradesNothing: a HEAD to the WebSocket route, even with the
// upgrade's headers, is answered as a GET that asks no upgrade (426 with
// Upgrade: websocket and the JSON error's headers, no body), after the
// token check, and takes no connection slot. Before, the handshake
// refused it as a method other than GET: 405 without an Allow header.
func TestHeadUpgradesNothing(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"signed in", "Bearer token-u", http.StatusUpgradeRequired},
		{"a bad token", "Bearer junk", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodHead, s.srv.URL, nil)
		for k, v := range map[string]string{"Authorization": tc.token, "Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
			req.Header.Set(k, v)
		}
		res, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: HEAD %d %q, want %d JSON", tc.name, res.StatusCode, res.Header.Get("Content-Type"), tc.status)
		}
		if tc.status == http.StatusUpgradeRequired && res.Header.Get("Upgrade") != "websocket" {
			t.Fatalf("%s: Upgrade %q, want websocket", tc.name, res.Header.Get("Upgrade"))
		}
	}
	if users := s.limits.ConnectedUsers(); len(users) != 0 {
		t.Fatalf("slots still held by %v", users)
	}
}

// TestUnknownSubprotocolRefused: an upgrade offering subprotocols, none of
// them chat.v1 (the bearer.<token> one aside), is refused before the
// upgrade with 400 bad_request naming the protocol spoken; one offering
// chat.v1 among others, or none at all, upgrades to chat.v1. Before, the
// server upgraded without a subprotocol and spoke chat.v1 to a client
// that asked for another.
func TestUnknownSubprotocolRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	for _, tc := range []struct {
		name    string
		offered []string
		bearer  bool // the token as a subprotocol, not in Authorization
		refused bool
	}{
		{"an unknown one", []string{"chat.v2"}, false, true},
		{"an unknown one beside the token", []string{"chat.v2"}, true, true},
		{"chat.v1 among others", []string{"chat.v2", "chat.v1"}, true, false},
		{"chat.v1 in capitals", []string{"CHAT.V1"}, false, false},
		{"none", nil, false, false},
		{"the token alone", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			opts := &websocket.DialOptions{Subprotocols: tc.offered, HTTPHeader: http.Header{}}
			if tc.bearer {
				opts.Subprotocols = append(opts.Subprotocols, "bearer.token-u")
			} else {
				opts.HTTPHeader.Set("Authorization", "Bearer token-u")
			}
			c, res, err := websocket.Dial(ctx, s.url(), opts)
			if !tc.refused {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("upgraded")
			}
			if res == nil || res.StatusCode != http.StatusBadRequest {
				t.Fatalf("dial: %v (%+v), want 400", err, res)
			}
			data, _ := io.ReadAll(res.Body)
			if !strings.Contains(string(data), `"bad_request"`) || !strings.Contains(string(data), "chat.v1") {
				t.Fatalf("body %s, want bad_request naming chat.v1", data)
			}
		})
	}
}
