package sse_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"chatd/persistence"
	"chatd/transport/sse"
)

// TestAcceptedNamesTheReplacedModel: a send or regenerate answered 202
// (no event stream asked for) names, as the ack does, the conversation's
// model the hub replaced, no longer offered, and the model answering in
// its place; without a replacement the body has neither.
func TestAcceptedNamesTheReplacedModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, body string
		replaced         bool
	}{
		{"a send", "messages", `{"content":"hi"}`, true},
		{"a regenerate", "regenerate", `{}`, true},
		{"a send, nothing replaced", "messages", `{"content":"hi"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{}, false)
			conv := persistence.NewID()
			s.hub.AddConversation(conv, "u", "")
			if tc.replaced {
				s.hub.ReplaceModel("gone", "m")
			}
			res := s.request("u", http.MethodPost, "/api/conversations/"+conv+"/"+tc.path, tc.body)
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d, body %v (%v)", res.StatusCode, body, err)
			}
			replaced, by := body["replacedModel"], body["model"]
			if tc.replaced && (replaced != "gone" || by != "m") || !tc.replaced && (replaced != nil || by != nil) {
				t.Fatalf("202 body %v", body)
			}
		})
	}
}
