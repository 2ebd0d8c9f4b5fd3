package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestStuckWriteClosed: a tab that stops reading while its queue still has
// room is dropped once a single write has waited longer than WriteTimeout,
// so a peer that is gone without a word does not hold its writer forever.
func TestStuckWriteClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{smallBuffers: true, tweak: func(c *Config) {
		// Short, so the stuck tab is dropped soon, yet past a stall of a
		// loaded machine under -race: the reading tab's writes have it too,
		// and at 300 ms a reader waiting a second for a core was dropped.
		c.WS.WriteTimeout = 3 * time.Second
		c.WS.QueueSize = 1 << 16 // never full here: only the write timeout can drop it
	}})
	u := e.register(t)
	fast := e.dial(t, u)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	stuck := e.dialWith(t, &websocket.DialOptions{HTTPHeader: h, HTTPClient: smallReadBufferClient()})
	stuck.paused.Store(true)
	ack := fast.start("flood [[fake tokens=30000 delay=0ms]]")
	stuck.write(map[string]any{"type": "subscribe", "conversationId": ack.ConversationID})
	if _, done := answer(t, live(fast.until(isDone(ack.MessageID))), ack.MessageID); done.Status != "complete" {
		t.Fatalf("the reading tab: %s", done.raw)
	}
	waitFor(t, "the stuck tab to be dropped", func() bool { return e.app.Hub().Connections(u.ID) == 1 })
	close(stuck.resume)
	stuck.paused.Store(false)
	if got := stuck.closeStatus(); got == 4408 {
		t.Fatal("closed as a full queue; the write timeout should have dropped it")
	}
}
