package hub

import (
	"strconv"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// nopSub is a Subscriber that drops what it is handed.
type nopSub struct{}

func (nopSub) UserID() string                   { return "u" }
func (nopSub) ConnectionID() string             { return "c" }
func (nopSub) Deliver(*protocol.Frame)          {}
func (nopSub) Close(protocol.CloseCode, string) {}

// BenchmarkDelta measures the per-token work of a running answer followed
// by 10 tabs (the single-process hot path): appending the token, queueing
// it for the next coalesced delta and, once per interval, encoding and
// delivering that delta.
func BenchmarkDelta(b *testing.B) {
	for _, subs := range []int{1, 10} {
		b.Run(strconv.Itoa(subs)+"tabs", func(b *testing.B) {
			h := New(Options{Writer: nopWriter{}, CoalesceInterval: time.Microsecond})
			c := &conv{id: "conv", subs: map[Subscriber]struct{}{}}
			for range subs {
				c.subs[&nopSub{}] = struct{}{}
			}
			g := &generation{hub: h, conv: c, msg: persistence.Message{ID: "m", ConversationID: "conv"}}
			c.gen = g
			b.ReportAllocs()
			for b.Loop() {
				g.onDelta("token ")
			}
		})
	}
}
