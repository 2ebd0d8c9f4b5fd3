package hub

import (
	"context"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
)

// TestTitleOnlyAfterAUsableAnswer (issue 10, item 14): a conversation is
// named after a complete answer, with one more upstream request; a failed
// answer asks the upstream for nothing more.
func TestTitleOnlyAfterAUsableAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, prompt string
		wantStatus   string
		wantRequests int
		wantTitle    bool
	}{
		{"complete", "tell me about otters", "complete", 2, true},
		{"failed", "tell me about otters [[fake fault=500]]", "error", 1, false},
		{"failed mid-answer", "tell me about otters [[fake fault=error_mid after=2]]", "error", 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			client := openai.New(openai.Options{BaseURL: srv.URL, MaxRetries: -1})
			e := &env{store: newMemStore()}
			e.writer = &memWriter{store: e.store}
			e.h = New(Options{Store: e.store, Writer: e.writer, Model: client,
				Titler: (&llm.Titler{Streamer: client}).Title})
			go func() { _ = e.h.Run(t.Context()) }()

			sub := newSub("u")
			res := e.send(t, sub, tc.prompt)
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != tc.wantStatus {
				t.Fatalf("answer ended %s (%+v), want %s", done.Status, done.Error, tc.wantStatus)
			}
			e.h.work.Wait() // the generation, then the title job it starts, if any
			t.Cleanup(func() { _ = e.h.Shutdown(context.Background()) })
			if n := len(srv.Recorded()); n != tc.wantRequests {
				t.Fatalf("%d upstream chat requests, want %d", n, tc.wantRequests)
			}
			conv, err := e.store.Conversation(context.Background(), "u", res.ConversationID)
			if err != nil {
				t.Fatal(err)
			}
			if (conv.Title != "") != tc.wantTitle {
				t.Fatalf("title %q, want one: %v", conv.Title, tc.wantTitle)
			}
		})
	}
}
