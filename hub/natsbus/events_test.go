package natsbus

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// TestEventsOfARestartedInstance: a process that starts with the id of
// one that stopped (an operator's fixed id, a test's) has its events
// delivered: their ids are new, so neither the receivers' memory of
// events handed over nor JetStream's duplicate window drops them.
func TestEventsOfARestartedInstance(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recv, rec := newBus(t, c, "rs-recv", 2*time.Second)
	first, _ := newBus(t, c, "rs-same", 2*time.Second)
	waitHealthy(t, ctx, recv, first)
	event := func(n int) hub.UserEvent {
		return hub.UserEvent{UserID: "u1", Frame: &protocol.Frame{Type: protocol.TypeConversation,
			Data: []byte(`{"n":` + strconv.Itoa(n) + `}`)}}
	}
	for n := 1; n <= 2; n++ {
		if err := first.Broadcast(ctx, event(n)); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, ctx, "the first process's events", func() bool { return len(rec.events) == 2 })
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again, _ := newBus(t, c, "rs-same", 2*time.Second)
	waitHealthy(t, ctx, again)
	for n := 3; n <= 4; n++ {
		if err := again.Broadcast(ctx, event(n)); err != nil {
			t.Fatal(err)
		}
	}
	wait, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	rec.waitFor(t, wait, "the restarted process's events", func() bool { return len(rec.events) == 4 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, ev := range rec.events {
		if want := `{"n":` + strconv.Itoa(i+1) + `}`; string(ev.Frame.Data) != want {
			t.Fatalf("event %d is %s, want %s", i, ev.Frame.Data, want)
		}
	}
}

// TestEventsSurviveCutOff: an instance cut off from NATS while another
// broadcasts user events gets them once it is back (from the events
// stream), each once, in order; core NATS alone lost them.
func TestEventsSurviveCutOff(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sender, _ := newBus(t, c, "ev-sender", 2*time.Second)
	cut, rec, p := newBusBehindProxy(t, c, "ev-cut")
	waitHealthy(t, ctx, sender, cut)

	first := hub.UserEvent{UserID: "u-ev", Frame: &protocol.Frame{Type: protocol.TypeConversation, Data: []byte(`{"n":0}`)}}
	if err := sender.Broadcast(ctx, first); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ctx, "the event before the cut", func() bool { return len(rec.events) == 1 })
	for cut.eventsRead.Load() == 0 { // the instance reads the stream, as it does once running
		select {
		case <-ctx.Done():
			t.Fatal("the events stream is never read")
		case <-time.After(5 * time.Millisecond):
		}
	}

	p.cutOff()
	for cut.nc.IsConnected() {
		select {
		case <-ctx.Done():
			t.Fatal("the cut-off instance stays connected")
		case <-time.After(5 * time.Millisecond):
		}
	}
	want := []string{`{"n":0}`}
	for _, d := range []string{`{"n":1}`, `{"n":2}`} {
		ev := hub.UserEvent{UserID: "u-ev", Frame: &protocol.Frame{Type: protocol.TypeConversation, Data: []byte(d)}}
		if err := sender.Broadcast(ctx, ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	closeEv := hub.UserEvent{UserID: "u-ev", Close: &hub.UserClose{Code: protocol.CloseUnauthorized, Reason: "signed out"}}
	if err := sender.Broadcast(ctx, closeEv); err != nil {
		t.Fatal(err)
	}
	waitEventsStored(t, ctx, sender, 4)
	p.restore()
	restored := time.Now()
	rec.waitFor(t, ctx, "the events broadcast during the cut", func() bool { return len(rec.events) >= 4 })
	// 0.1 to 0.7s here (the reconnect's backoff, then the consumer picks
	// up where it was); a lost request waited out would take 5s. The bound
	// (3 s before) leaves room for a 2 s stall of a loaded machine.
	if took := time.Since(restored); took > 4*time.Second {
		t.Fatalf("the events missed during the cut arrived %v after it ended, want within 4s", took)
	} else {
		t.Logf("the events missed during the cut arrived %v after it ended", took)
	}
	// One more event proves nothing else was queued behind it.
	last := hub.UserEvent{UserID: "u-ev", Frame: &protocol.Frame{Type: protocol.TypeConversation, Data: []byte(`{"n":3}`)}}
	if err := sender.Broadcast(ctx, last); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ctx, "the event after the cut", func() bool { return len(rec.events) >= 5 })
	got := rec.eventNames()
	want = append(want, "close", `{"n":3}`)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events after the cut: %v, want %v", got, want)
	}
}

// waitEventsStored waits until the events stream holds n messages.
func waitEventsStored(t *testing.T, ctx context.Context, b *Bus, n uint64) {
	t.Helper()
	for {
		st, err := b.js.Stream(ctx, b.res.Load().events.name)
		if err == nil && st.CachedInfo().State.Msgs >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d events never stored (%v)", n, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// cutProxy forwards TCP connections to a NATS server until it is cut off:
// then it closes them and refuses new ones until restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

// newBusBehindProxy starts a bus, id, that reaches the cluster's first
// server through a cutProxy (its OutageGrace 500 ms, its lease TTL 2 s),
// with a recorder attached.
func newBusBehindProxy(t *testing.T, c *natstest.Cluster, id string) (*Bus, *recorder, *cutProxy) {
	t.Helper()
	p := newCutProxy(t, strings.TrimPrefix(c.URLs()[0], "nats://"))
	b, err := New(Options{URLs: []string{"nats://" + p.addr()}, InstanceID: id, User: "chatd", Password: "pw",
		LeaseTTL: 2 * time.Second, OutageGrace: 500 * time.Millisecond, Stream: StreamLimits{MaxBytes: 64 << 20},
		clientOptions: []nats.Option{nats.IgnoreDiscoveredServers()}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	b.Attach(rec)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b, rec, p
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cutOff()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

func (p *cutProxy) cutOff() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// blockingHandler is a hub.BusHandler whose UserEvent for the event
// numbered block waits for release; it records the events' numbers.
type blockingHandler struct {
	recorder
	block   string
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) UserEvent(ev hub.UserEvent) {
	if string(ev.Frame.Data) == h.block {
		close(h.entered)
		<-h.release
	}
	h.recorder.UserEvent(ev)
}

// TestEventsHandedOverInOrder: an event reaches an instance twice (core
// NATS and the events stream, on two goroutines); while the first copy of
// event 1 is being handed to the hub, the other goroutine, which finds
// event 1 already claimed, does not hand over event 2 before it.
func TestEventsHandedOverInOrder(t *testing.T) {
	t.Parallel()
	b := &Bus{id: "me", log: slog.New(slog.DiscardHandler)}
	h := &blockingHandler{recorder: *newRecorder(), block: "1", entered: make(chan struct{}), release: make(chan struct{})}
	b.Attach(h)
	event := func(n int) (nats.Header, []byte) {
		hdr := nats.Header{}
		hdr.Set(hdrOrigin, "other")
		hdr.Set(hdrEventID, "other.x."+strconv.Itoa(n))
		data, _ := json.Marshal(hub.UserEvent{UserID: "u1", Frame: &protocol.Frame{Type: protocol.TypeConversation,
			Data: []byte(strconv.Itoa(n))}})
		return hdr, data
	}
	core := make(chan struct{})
	go func() { // core NATS: event 1, handed over slowly
		defer close(core)
		b.receiveEvent(event(1))
	}()
	<-h.entered
	stream := make(chan struct{})
	go func() { // the events stream: event 1 again, then event 2
		defer close(stream)
		b.receiveEvent(event(1))
		b.receiveEvent(event(2))
	}()
	select {
	case <-stream:
		t.Error("event 2 was handed over while event 1 still was")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
	<-core
	<-stream
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, ev := range h.events {
		got = append(got, string(ev.Frame.Data))
	}
	if strings.Join(got, ",") != "1,2" {
		t.Fatalf("events handed over: %v, want 1,2 (each once, in order)", got)
	}
}

// TestBroadcastWhileEventsStreamSilent: while the events stream does not
// acknowledge user events (it is gone here; an events stream without a
// leader is as silent) and core NATS works, every event still reaches the
// other instances, however many were broadcast: once more are waiting
// for their acknowledgement than nats.go allows, an event goes on core
// NATS alone (it failed, and was not delivered at all, before). And the
// acknowledgements that never come are given up after eventAckWait (they
// were kept until the next reconnect, so a Broadcast stalled for good).
func TestBroadcastWhileEventsStreamSilent(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const pending = 3
	stuck, _ := newBusWith(t, c, Options{InstanceID: "silent-stuck", LeaseTTL: 2 * time.Second,
		eventsPending: pending, eventAckWait: time.Hour})
	timed, _ := newBusWith(t, c, Options{InstanceID: "silent-timed", LeaseTTL: 2 * time.Second,
		eventAckWait: 100 * time.Millisecond})
	recv, rec := newBus(t, c, "silent-recv", 2*time.Second)
	waitHealthy(t, ctx, stuck, timed, recv)
	if err := stuck.js.DeleteStream(ctx, stuck.res.Load().events.name); err != nil {
		t.Fatal(err)
	}

	for n := range pending + 2 {
		ev := hub.UserEvent{UserID: "u-silent", Frame: &protocol.Frame{Type: protocol.TypeConversation,
			Data: []byte(`{"n":` + strconv.Itoa(n) + `}`)}}
		if err := stuck.Broadcast(ctx, ev); err != nil {
			t.Fatalf("event %d: %v", n, err)
		}
	}
	rec.waitFor(t, ctx, "every event", func() bool { return len(rec.events) == pending+2 })

	ev := hub.UserEvent{UserID: "u-silent", Close: &hub.UserClose{Code: protocol.CloseUnauthorized, Reason: "signed out"}}
	if err := timed.Broadcast(ctx, ev); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ctx, "the close", func() bool { return len(rec.events) == pending+3 })
	select {
	case <-timed.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatalf("an acknowledgement that never comes is waited for for ever (%d waiting)", timed.js.PublishAsyncPending())
	}
}

// TestEventsStreamReadAfterJetStreamLost: when NATS comes back without
// its data and the bus sets the events stream up again, each instance
// reads the new stream from its start, so an instance cut off for a
// moment later still gets the events it missed. The ordered consumer
// went on after the last sequence it had read of the stream lost, and
// read none of the new stream's events up to that number.
func TestEventsStreamReadAfterJetStreamLost(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sender, _ := newBus(t, c, "evlost-sender", time.Second)
	recv, rec := newBus(t, c, "evlost-recv", time.Second)
	waitHealthy(t, ctx, sender, recv)
	event := func(n int) hub.UserEvent {
		return hub.UserEvent{UserID: "u-evlost", Frame: &protocol.Frame{Type: protocol.TypeConversation,
			Data: []byte(`{"n":` + strconv.Itoa(n) + `}`)}}
	}
	const before = 3
	for n := range before {
		if err := sender.Broadcast(ctx, event(n)); err != nil {
			t.Fatal(err)
		}
	}
	waitEventsRead(t, ctx, recv, before)

	c.StopAll()
	waitUnhealthy(t, ctx, recv)
	c.Wipe()
	c.StartAll()
	waitHealthy(t, ctx, sender, recv)
	waitEventsStored(t, ctx, sender, 0) // the events stream is there again
	for n := before; n < before+2; n++ {
		if err := untilAvailable(ctx, func() error { return sender.Broadcast(ctx, event(n)) }); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, ctx, "the events over core NATS", func() bool { return len(rec.events) == before+2 })
	waitEventsRead(t, ctx, recv, before+2)
}

// waitEventsRead waits until b has read n user events from the events stream.
func waitEventsRead(t *testing.T, ctx context.Context, b *Bus, n int64) {
	t.Helper()
	for b.eventsRead.Load() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d events read from the events stream", b.eventsRead.Load(), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestClosedInstanceLeavesNoEventsConsumer: an instance that closes
// deletes the consumer it read the events stream with. Stopping it alone
// left the consumer on NATS for five minutes after each instance's stop
// (a rolling restart, a crash loop: one more each time, counted against
// the account's consumer limit).
func TestClosedInstanceLeavesNoEventsConsumer(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stay, _ := newBus(t, c, "ec-stay", 2*time.Second)
	waitHealthy(t, ctx, stay)
	consumers := func() int {
		st, err := stay.js.Stream(ctx, stay.res.Load().events.name)
		if err != nil {
			t.Fatalf("read the events stream: %v", err)
		}
		return st.CachedInfo().State.Consumers
	}
	waitConsumers := func(what string, done func(n int) bool) int {
		for {
			n := consumers()
			if done(n) {
				return n
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: the events stream has %d consumers", what, n)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	base := waitConsumers("the staying instance's consumer", func(n int) bool { return n >= 1 })
	var leaving []*Bus
	for _, id := range []string{"ec-a", "ec-b", "ec-c"} {
		b, _ := newBus(t, c, id, 2*time.Second)
		leaving = append(leaving, b)
	}
	waitHealthy(t, ctx, leaving...)
	waitConsumers("three more instances reading", func(n int) bool { return n >= base+3 })
	for _, b := range leaving {
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Close returns after the delete was answered: the count is already
	// down; the wait only allows for NATS's own bookkeeping.
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	ctx = wait
	waitConsumers("after the three closed", func(n int) bool { return n <= base })
}
