package transport_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"
)

// TestContentEncodingRefused: over the real router, a body whose
// Content-Encoding the server does not decode is answered 415
// unsupported_media_type with Accept-Encoding: identity and nothing is
// done with it, on an authenticated route and an account route alike; a
// body sent with identity, or without the header, is taken. Before, a gzip
// body was refused as "not valid UTF-8" and a br one sent plain created
// the conversation.
func TestContentEncodingRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.register("Encoder")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"title":"zipped"}`))
	_ = zw.Close()
	for _, c := range []struct {
		name, path, token string
		body              []byte
		encoding          string
		status            int
	}{
		{"gzip", "/api/conversations", a.token, gz.Bytes(), "gzip", http.StatusUnsupportedMediaType},
		{"br declared, plain sent", "/api/conversations", a.token, []byte(`{"title":"plain"}`), "br", http.StatusUnsupportedMediaType},
		{"a sign-in in gzip", "/api/auth/login", "", gz.Bytes(), "gzip", http.StatusUnsupportedMediaType},
		{"identity", "/api/conversations", a.token, []byte(`{"title":"plain"}`), "identity", http.StatusCreated},
		{"none", "/api/conversations", a.token, []byte(`{"title":"plain"}`), "", http.StatusCreated},
	} {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.encoding != "" {
				headers = []string{"Content-Encoding", c.encoding}
			}
			r := e.do("POST", c.path, c.token, c.body, headers...)
			if c.status != http.StatusUnsupportedMediaType {
				expect(t, c.name, r, c.status, "")
				return
			}
			expect(t, c.name, r, c.status, "unsupported_media_type")
			if got := r.header.Get("Accept-Encoding"); got != "identity" {
				t.Fatalf("Accept-Encoding %q, want identity", got)
			}
		})
	}
	r := e.do("GET", "/api/conversations", a.token, nil)
	if n := len(r.json(t)["conversations"].([]any)); n != 2 {
		t.Fatalf("%d conversations stored, want the 2 sent unencoded: %s", n, r.body)
	}
}
