package sse_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// TestSendWithoutSlotAccepted: a send or regenerate asking for an event
// stream while the user's event streams hold every connection slot (one
// per SSE tab, CHATD_MAX_CONNS_PER_USER of them) is answered 202 with the
// new ids, as one that does not ask for a stream: the hub is asked once,
// with no subscriber (the answer's frames reach the event streams), and no
// slot is taken. Before, it was refused 429 'too many open connections',
// and the client gave the message back as refused, where the same tabs
// over WebSocket send.
func TestSendWithoutSlotAccepted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, body string }{
		{"messages", `{"content":"hi","clientMessageId":"k"}`},
		{"regenerate", `{"clientMessageId":"k"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			const slots = 2
			s := newServer(t, sse.Options{Limits: limits.New(limits.Options{MaxConns: slots})}, false)
			conv := persistence.NewID()
			s.hub.AddConversation(conv, "u", "")
			for range slots {
				if res := s.request("u", http.MethodGet, "/api/events?conversationId="+conv, ""); res.StatusCode != http.StatusOK {
					t.Fatalf("event stream: %d", res.StatusCode)
				}
			}
			s.waitHub("the event streams to register", func(h *hubtest.Hub) bool { return h.Count() == slots })
			res := s.request("u", http.MethodPost, "/api/conversations/"+conv+"/"+tc.path, tc.body, "Accept", "text/event-stream")
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d, want 202", res.StatusCode)
			}
			var ids struct{ ConversationID, UserMessageID, MessageID string }
			if err := json.NewDecoder(res.Body).Decode(&ids); err != nil || ids.ConversationID != conv || ids.MessageID == "" {
				t.Fatalf("body %+v (%v), want the ids", ids, err)
			}
			if n := s.hub.SendCount() + len(s.hub.Regenerates()); n != 1 {
				t.Fatalf("the hub was asked %d times, want once", n)
			}
			if n := s.hub.Count(); n != slots {
				t.Fatalf("%d subscribers, want the %d event streams", n, slots)
			}
			if res := s.request("u", http.MethodGet, "/api/events", ""); res.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("one more event stream: %d, want 429", res.StatusCode)
			}
		})
	}
}
