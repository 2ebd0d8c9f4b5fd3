package app

import (
	"fmt"
	"testing"
	"time"
)

// TestWritesPerAnswer: the database writes an answer costs do not grow with
// its length. Counted at the store boundary on both stores, and with the
// driver's command monitor on MongoDB.
func TestWritesPerAnswer(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			// A checkpoint interval longer than any of these streams: what is
			// left to count is what an answer costs beyond its checkpoints,
			// which happen at most once per interval whatever the token rate
			// (persistence/batch tests that bound).
			e := newEnv(t, envOptions{mongo: store == "mongo", tweak: func(c *Config) { c.Writer.Interval = time.Minute }})
			u := e.register(t)
			cl := e.dial(t, u)
			first := cl.start("warm up")
			cl.until(isDone(first.MessageID))
			cl.until(func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" })

			type cost struct{ writes, updates, wire int64 }
			var costs []cost
			for _, tokens := range []int{10, 1000, 10000} {
				before, wire := e.store.Writes(), e.mongoWrites.Load()
				cl.write(sendFrame("n", first.ConversationID, fmt.Sprintf("tokens [[fake tokens=%d]]", tokens)))
				acks := live(cl.until(func(f frame) bool { return f.Type == "ack" }))
				text, done := answer(t, live(cl.until(isDone(acks[len(acks)-1].MessageID))), acks[len(acks)-1].MessageID)
				if done.Status != "complete" || len(text) < tokens {
					t.Fatalf("%d tokens: %s", tokens, done.raw)
				}
				after := e.store.Writes()
				c := cost{after.Writes - before.Writes, after.MessageUpdates - before.MessageUpdates, e.mongoWrites.Load() - wire}
				t.Logf("%5d tokens (%6d bytes): %d store writes (%d message updates), %d MongoDB write commands",
					tokens, len(text), c.writes, c.updates, c.wire)
				costs = append(costs, c)
			}
			// A user message, the answer's row, one final update (text
			// streamed within one checkpoint interval comes with it).
			for _, c := range costs {
				if c.writes > 4 || c.writes != costs[0].writes {
					t.Fatalf("store writes per answer %+v: they must be few and equal for 10, 1,000 and 10,000 tokens", costs)
				}
				if store == "mongo" && (c.wire != costs[0].wire || c.wire > 6) {
					t.Fatalf("MongoDB write commands per answer %+v", costs)
				}
			}
		})
	}
}
