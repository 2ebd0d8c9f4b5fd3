package fakeai

import (
	"net/http/httptest"
	"testing"
)

// TestServer is a Server listening on a local port for a test.
type TestServer struct {
	*Server
	// URL is the base URL for OpenAI clients, ending in "/v1".
	URL string
	// HTTP is the underlying test server.
	HTTP *httptest.Server
}

// Start serves a new Server on a local port until the test ends.
func Start(tb testing.TB, opts Options) *TestServer {
	tb.Helper()
	s := New(opts)
	hs := httptest.NewServer(s)
	tb.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return &TestServer{Server: s, URL: hs.URL + "/v1", HTTP: hs}
}
