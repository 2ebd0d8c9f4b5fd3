package app

import (
	"net/http"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
)

// TestEventSourceReconnect: a client that reconnects as a browser's
// EventSource does, to the URL it first opened (here with lastSeq=0) with
// Last-Event-ID set to the id of the last event it got, is sent only what
// follows that event, on GET .../stream and on GET /api/events: the text
// of both connections together is the answer, once. Before, the URL's
// lastSeq won and the reconnect was sent again the text it had.
func TestEventSourceReconnect(t *testing.T) {
	t.Parallel()
	// The upstream hangs after four tokens until the answer is cancelled.
	e := newEnv(t, envOptions{model: func(o *openai.Options) { o.IdleTimeout = time.Minute }})
	for _, route := range []string{"stream", "events"} {
		t.Run(route, func(t *testing.T) {
			u := e.register(t)
			var created struct{ Conversation persistence.Conversation }
			e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
			conv := created.Conversation.ID
			var started struct{ MessageID string }
			e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+conv+"/messages",
				map[string]string{"content": "hello [[fake tokens=10 fault=hang_mid after=4]]"}, http.StatusAccepted, &started)
			msg := started.MessageID
			url := "/api/conversations/" + conv + "/stream?messageId=" + msg + "&lastSeq=0"
			if route == "events" {
				url = "/api/events?conversationId=" + conv + "&messageId=" + msg + "&lastSeq=0"
			}
			// The first connection: the text so far, up to the event of
			// the fourth token; then the connection drops.
			first, _ := e.sse(t, u, http.MethodGet, url, "", nil, func(ev sseEvent) bool {
				return ev.name == "delta" && ev.data.MessageID == msg && ev.data.Seq == fourTokens
			})
			last := first[len(first)-1].id
			// The reconnect, with the header an EventSource sends; the
			// answer is then cancelled, and its done ends what is read.
			second, subscribed := make(chan []sseEvent, 1), make(chan struct{})
			go func() {
				evs, _ := e.sse(t, u, http.MethodGet, url, "", map[string]string{"Last-Event-ID": last}, func(ev sseEvent) bool {
					if ev.name == "ack" {
						close(subscribed)
					}
					return ev.name == "done" && ev.data.MessageID == msg
				})
				second <- evs
			}()
			select { // the answer is cancelled once the reconnect follows it
			case <-subscribed:
			case <-time.After(testTimeout):
				t.Fatal("the reconnect was not acknowledged")
			}
			e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+conv+"/cancel", nil, http.StatusNoContent, nil)
			all := append(frames(first), frames(<-second)...)
			text, done := answer(t, all, msg) // fails on a duplicate
			if done.Type != "done" || text != e.thread(t, u, conv).message(t, msg).Content {
				t.Fatalf("text %q, done %s", text, done.raw)
			}
		})
	}
}

// fourTokens is the length of the first four tokens of the fake answer.
var fourTokens = int64(len(fakeai.ExpectedPrefix(fakeai.Config{Tokens: 10}, 4)))
