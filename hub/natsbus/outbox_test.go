package natsbus

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// TestEventsOfACutOffInstance: the user events an instance broadcasts
// while it is cut off from NATS past OutageGrace (it still serves HTTP:
// a rename, a deletion, a logout) reach the other instances once the
// link is back (without waiting for another event), in the order they
// were broadcast, before an event broadcast after, and each once (core
// NATS and the events stream both bring them). Before the outbox,
// Broadcast refused them and they were lost for good.
func TestEventsOfACutOffInstance(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other, rec := newBus(t, c, "ob-other", 2*time.Second)
	cut, _, p := newBusBehindProxy(t, c, "ob-cut")
	waitHealthy(t, ctx, other, cut)
	frame := func(d string) hub.UserEvent {
		return hub.UserEvent{UserID: "u-ob", Frame: &protocol.Frame{Type: protocol.TypeConversation, Data: []byte(d)}}
	}
	if err := cut.Broadcast(ctx, frame(`{"n":0}`)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ctx, "the event before the cut", func() bool { return len(rec.events) == 1 })

	p.cutOff()
	select { // past the grace: the bus is down
	case <-cut.conn.down():
	case <-ctx.Done():
		t.Fatal("the cut-off instance is never down")
	}
	if cut.Health(ctx) == nil {
		t.Fatal("the cut-off instance reports itself healthy")
	}
	during := []hub.UserEvent{frame(`{"renamed":1}`), frame(`{"deleted":1}`),
		{UserID: "u-ob", Close: &hub.UserClose{Code: protocol.CloseUnauthorized, Reason: "signed out"}}}
	for i, ev := range during {
		if err := cut.Broadcast(ctx, ev); err != nil {
			t.Fatalf("broadcast %d while cut off: %v", i, err)
		}
	}
	p.restore()
	// They go out when the connection is back, not with the next event.
	rec.waitFor(t, ctx, "the events broadcast while cut off", func() bool { return len(rec.events) >= 4 })
	waitHealthy(t, ctx, cut)
	if err := cut.Broadcast(ctx, frame(`{"n":4}`)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ctx, "the event after the cut", func() bool { return len(rec.events) >= 5 })
	// Both copies of each (core NATS, the stream) have come: a second
	// one handed over would show now.
	for other.eventsRead.Load() < 5 {
		select {
		case <-ctx.Done():
			t.Fatalf("the events stream holds %d of the 5 events", other.eventsRead.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	got := rec.eventNames()
	want := []string{`{"n":0}`, `{"renamed":1}`, `{"deleted":1}`, "close", `{"n":4}`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events the other instance got: %v, want %v", got, want)
	}
	if n := cut.EventsDropped(); n != 0 {
		t.Fatalf("%d events dropped", n)
	}
}

// TestOutboxBounds: the outbox keeps at most its count and bytes,
// dropping the oldest; an event older than its age when the connection
// is back is dropped, not sent; the event being published is neither
// dropped for room nor counted in the bounds, and one whose publish
// failed as the connection went waits first again; nothing is held
// while the bus is up and nothing waits.
func TestOutboxBounds(t *testing.T) {
	t.Parallel()
	msg := func(n, size int) *nats.Msg {
		return &nats.Msg{Subject: strconv.Itoa(n), Data: make([]byte, size)}
	}
	cases := []struct {
		name      string
		maxEvents int
		maxBytes  int
		sizes     []int
		want      []int // the events kept, by number
	}{
		{"within bounds", 4, 100, []int{10, 10, 10}, []int{0, 1, 2}},
		{"count", 2, 100, []int{10, 10, 10, 10}, []int{2, 3}},
		{"bytes", 10, 25, []int{10, 10, 10}, []int{1, 2}},
		{"bytes, a large newest", 10, 25, []int{10, 10, 20}, []int{2}},
		{"newest above the bytes kept alone", 10, 25, []int{10, 30}, []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox()
			o.maxEvents, o.maxBytes = tc.maxEvents, tc.maxBytes
			firstDrops := 0
			for n, size := range tc.sizes {
				held, first := o.hold(msg(n, size), true)
				if !held {
					t.Fatalf("event %d not held while down", n)
				}
				if first {
					firstDrops++
				}
			}
			var got []int
			for _, e := range o.queue {
				n, _ := strconv.Atoi(e.msg.Subject)
				got = append(got, n)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			dropped := len(tc.sizes) - len(tc.want)
			if int(o.droppedTotal()) != dropped || o.takeFull() != dropped {
				t.Fatalf("dropped %d, want %d", o.droppedTotal(), dropped)
			}
			if wantFirst := min(dropped, 1); firstDrops != wantFirst {
				t.Fatalf("%d first drops reported, want %d", firstDrops, wantFirst)
			}
		})
	}

	t.Run("too old", func(t *testing.T) {
		o := newOutbox()
		now := time.Unix(1000, 0)
		o.now = func() time.Time { return now }
		o.hold(msg(0, 1), true)
		now = now.Add(time.Minute)
		o.hold(msg(1, 1), true)
		now = now.Add(o.maxAge) // event 0 past the age, event 1 at it
		e, expired, ok := o.head()
		if !ok || expired != 1 || e.msg.Subject != "1" || o.droppedTotal() != 1 {
			t.Fatalf("head %q, %d expired, ok %v; want event 1, 1 expired", e.msg.Subject, expired, ok)
		}
	})

	// The event being published (head, until done) is no longer
	// waiting: it is neither dropped for room nor counted in the bounds.
	// It was, so an event was counted both sent and dropped while the
	// oldest waiting one was kept.
	t.Run("held while one is published", func(t *testing.T) {
		o := newOutbox()
		o.maxEvents, o.maxBytes = 3, 30
		for n := range 3 {
			o.hold(msg(n, 10), true)
		}
		e, _, _ := o.head() // event 0 is being published...
		if _, first := o.hold(msg(3, 10), true); first {
			t.Error("a drop reported with the outbox within its bounds")
		}
		o.done(e.seq) // ...and was
		if o.droppedTotal() != 0 || o.takeFull() != 0 || o.len() != o.maxEvents {
			t.Fatalf("%d dropped, %d wait; want none dropped, %d waiting", o.droppedTotal(), o.len(), o.maxEvents)
		}
		e, _, _ = o.head() // event 1 is being published; 4 and 5 come, 2 goes
		o.hold(msg(4, 10), true)
		o.hold(msg(5, 10), true)
		o.done(e.seq)
		var got []int
		for _, e := range o.queue {
			n, _ := strconv.Atoi(e.msg.Subject)
			got = append(got, n)
		}
		if want := []int{3, 4, 5}; !slices.Equal(got, want) || o.droppedTotal() != 1 {
			t.Fatalf("kept %v with %d dropped, want %v with 1 (the oldest waiting, 2)", got, o.droppedTotal(), want)
		}
	})

	t.Run("kept first when the connection went", func(t *testing.T) {
		o := newOutbox()
		o.maxEvents = 2
		o.hold(msg(0, 1), true)
		o.hold(msg(1, 1), true)
		e, _, _ := o.head()
		o.keep(e.seq) // its publish failed: the connection went again
		o.hold(msg(2, 1), true)
		if o.len() != 2 || o.queue[0].msg.Subject != "1" || o.droppedTotal() != 1 {
			t.Fatalf("%d events wait, the first %q; want 2, the first 1", o.len(), o.queue[0].msg.Subject)
		}
	})

	t.Run("held behind waiting events", func(t *testing.T) {
		o := newOutbox()
		if held, _ := o.hold(msg(0, 1), false); held {
			t.Fatal("an event held while up with nothing waiting")
		}
		o.hold(msg(1, 1), true)
		if held, _ := o.hold(msg(2, 1), false); !held {
			t.Fatal("an event not held behind one waiting: it would overtake it")
		}
	})
}

// TestOutboxRefusedEventCounted: an event of the outbox the connection
// refuses while it is up (larger than the servers' max_payload) is
// dropped, counted in EventsDropped and in the flush's summary, and
// the events behind it still go out. It was dropped uncounted.
func TestOutboxRefusedEventCounted(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw", MaxPayload: 1 << 10})
	nc, err := nats.Connect(c.URLs()[0], nats.UserInfo("chatd", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("ev.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	logs := make(logRecords, 16)
	b := &Bus{nc: nc, out: newOutbox(), log: slog.New(logs)}
	b.out.hold(&nats.Msg{Subject: "ev.big", Data: make([]byte, 2<<10)}, true)
	b.out.hold(&nats.Msg{Subject: "ev.small", Data: []byte("{}")}, true)
	b.flushOutbox()

	if n := b.EventsDropped(); n != 1 {
		t.Errorf("%d events dropped, want 1", n)
	}
	if n := b.out.len(); n != 0 {
		t.Errorf("%d events wait, want 0", n)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil || m.Subject != "ev.small" {
		t.Fatalf("the event behind the refused one: %v (%v)", m, err)
	}
	var summary slog.Record
	for len(logs) > 0 {
		if r := <-logs; strings.HasPrefix(r.Message, "user events broadcast while cut off") {
			summary = r
		}
	}
	if summary.Level != slog.LevelWarn || logAttr(summary, "sent") != "1" || logAttr(summary, "dropped_refused") != "1" {
		t.Errorf("flush summary %v %q sent %q dropped_refused %q; want a warning, 1 sent, 1 dropped refused",
			summary.Level, summary.Message, logAttr(summary, "sent"), logAttr(summary, "dropped_refused"))
	}
}
