package sse_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"chatd/hub"
	"chatd/persistence"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// TestStreamRefusedDuringShutdown: a stream asked for once Shutdown has
// begun is refused with a 503 and never registers with the hub (whose
// last frames went to the subscribers it had), nor starts an answer, and
// gives its connection slot back.
func TestStreamRefusedDuringShutdown(t *testing.T) {
	conv, msg := persistence.NewID(), persistence.NewID()
	for _, tc := range []struct{ name, method, path, body string }{
		{"events", "GET", "/api/events", ""},
		{"events of a conversation", "GET", "/api/events?conversationId=" + conv, ""},
		{"resume", "GET", "/api/conversations/" + conv + "/stream?messageId=" + msg, ""},
		{"send", "POST", "/api/conversations/" + conv + "/messages", `{"content":"hi"}`},
		{"regenerate", "POST", "/api/conversations/" + conv + "/regenerate", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{Limits: limits.New(limits.Options{MaxConns: 1})}, false)
			s.hub.AddConversation(conv, "u", msg)
			var registered atomic.Int32
			s.hub.OnRegister(func(hub.Subscriber) { registered.Add(1) })
			s.h.Shutdown()
			res := s.request("u", tc.method, tc.path, tc.body, "Accept", "text/event-stream")
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
			}
			if n := registered.Load(); n != 0 {
				t.Errorf("%d streams registered with the hub during shutdown", n)
			}
			if n := s.hub.SendCount() + len(s.hub.Regenerates()); n != 0 {
				t.Errorf("%d answers started during shutdown", n)
			}
			if !s.limits.AcquireConn("u") {
				t.Errorf("the refused stream kept its connection slot")
			}
		})
	}
}
