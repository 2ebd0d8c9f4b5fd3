package hub

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// nopSub is a Subscriber that drops what it is handed.
type nopSub struct{ _ byte } // not zero-sized: each &nopSub{} is a distinct subscriber

func (nopSub) UserID() string                   { return "u" }
func (nopSub) ConnectionID() string             { return "c" }
func (nopSub) Deliver(*protocol.Frame)          {}
func (nopSub) Close(protocol.CloseCode, string) {}

// idleSub is a nopSub that, like a WebSocket connection or an SSE stream,
// implements Busy and DrainWatcher, and is never busy.
type idleSub struct{ nopSub }

func (*idleSub) Busy() bool  { return false }
func (*idleSub) WatchDrain() {}

// writtenSub is an idleSub that, like a WebSocket connection, releases
// each frame it is handed (FrameReleaser), here at once, as if written.
type writtenSub struct{ idleSub }

func (*writtenSub) Deliver(f *protocol.Frame) { f.Release() }
func (*writtenSub) ReleasesFrames()           {}

// BenchmarkDelta measures the per-token work of a running answer followed
// by 1 or 10 tabs (the single-process hot path): appending the token,
// queueing it for the next coalesced delta and, once per interval, encoding
// and delivering that delta. A new answer starts every 500 tokens.
func BenchmarkDelta(b *testing.B) {
	for _, subs := range []int{1, 10} {
		b.Run(strconv.Itoa(subs)+"tabs", func(b *testing.B) {
			h := New(Options{Writer: nopWriter{}, CoalesceInterval: time.Microsecond})
			c := &conv{id: "conv"}
			for range subs {
				c.subs.add(&nopSub{})
			}
			var g *generation
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%500 == 0 {
					g = &generation{hub: h, conv: c, msg: persistence.Message{ID: "m", ConversationID: "conv"}}
					c.gen = g
				}
				g.onDelta("token ")
				i++
			}
		})
	}
}

// BenchmarkTokenPath measures the hub's work per token in the benchmark's
// cpu scenario: 200 answers streaming at once (coalescing widened: about a
// delta per two tokens), each at 50 tokens/s and followed by 1 or 3 tabs
// that, like a WebSocket connection, can say whether they are busy (never,
// here), taking turns on a virtual clock with the flusher ticking as Run
// does. One op is one token: the store's append, the coalescing decision,
// the flusher and, per delta, encoding and handing it to every tab. An
// answer starts again every 500 tokens; ids and tokens are as long as
// the benchmark's. The released cases' tabs release each delta once
// written, as a WebSocket connection does (the hub then builds the next
// in it); allocs/token counts the heap allocations per token.
func BenchmarkTokenPath(b *testing.B) {
	const answers = 200
	for _, tc := range []struct {
		tabs     int
		released bool
	}{{1, false}, {3, false}, {1, true}, {3, true}} {
		tabs := tc.tabs
		name := strconv.Itoa(tabs) + "tabs"
		if tc.released {
			name += "-released"
		}
		b.Run(name, func(b *testing.B) {
			h := New(Options{Writer: nopWriter{}, CoalesceStreams: answers})
			h.live.Store(answers)
			now := h.flush.base
			tick := now
			gens := make([]*generation, answers)
			for i := range gens {
				c := &conv{id: persistence.NewID()}
				for range tabs {
					if tc.released {
						c.subs.add(&writtenSub{})
					} else {
						c.subs.add(&idleSub{})
					}
				}
				gens[i] = &generation{hub: h, conv: c}
			}
			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			i := 0
			for b.Loop() {
				g := gens[i%answers]
				if i/answers%500 == 0 {
					c := g.conv
					g = &generation{hub: h, conv: c, msg: persistence.Message{ID: persistence.NewID(), ConversationID: c.id}, lastFlush: now}
					c.gen, gens[i%answers] = g, g
				}
				now = now.Add(20 * time.Millisecond / answers)
				for ; tick.Before(now); tick = tick.Add(h.flush.step) {
					h.flush.tick(tick)
				}
				g.onDeltaAt("[ts:1764755000123] word ", now) // as the benchmark's fake model stamps its tokens
				i++
			}
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/token")
		})
	}
}
