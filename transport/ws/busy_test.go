package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// busySub returns the hub-side view of user's only connection.
func busySub(t *testing.T, s *server, user string) interface {
	hub.Busy
	hub.DrainWatcher
	hub.Subscriber
} {
	t.Helper()
	s.waitHub("the connection to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	sub, ok := s.hub.Subscribers(user)[0].(interface {
		hub.Busy
		hub.DrainWatcher
		hub.Subscriber
	})
	if !ok {
		t.Fatal("the connection implements neither hub.Busy nor hub.DrainWatcher")
	}
	return sub
}

// waitBusy polls sub.Busy until it reports want, within testTimeout.
func waitBusy(t *testing.T, sub hub.Busy, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for sub.Busy() != want {
		select {
		case <-ctx.Done():
			t.Fatalf("Busy() still %v", !want)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestStalledPeerNotBusy: a connection whose peer stopped reading (a write
// blocked for longer than StalledWrite) no longer tells the hub it is
// busy, though frames wait in its queue, so the hub does not hold the
// other tabs' deltas for it; before, it stayed busy until the write
// timeout closed it. Once the peer reads again it catches up in order.
func TestStalledPeerNotBusy(t *testing.T) {
	t.Parallel()
	cl, _ := stalledPeer(t)
	close(cl.resume)
	cl.expect("hello")
	cl.expectStalledDeltas()
}

// stalledDeltas is how many 16 KiB deltas stalledPeer queues: far more
// than the socket buffers hold.
const stalledDeltas = 40

// stalledPeer dials a connection for user "u" whose client does not read
// (until cl.resume is closed), queues stalledDeltas large deltas to it and
// returns once its writer is stuck behind them: the connection no longer
// says it is busy (StalledWrite).
func stalledPeer(t *testing.T) (*client, interface {
	hub.Busy
	hub.DrainWatcher
	hub.Subscriber
}) {
	t.Helper()
	s := newServer(t, serverOptions{smallBuffers: true, opts: ws.Options{StalledWrite: 20 * time.Millisecond}})
	cl := s.dial(dialOptions{user: "u", paused: true, smallBuffer: true})
	sub := busySub(t, s, "u")
	text := strings.Repeat("x", 16<<10)
	for i := range stalledDeltas {
		sub.Deliver(protocol.Delta("c", "m", int64(i+1), text))
	}
	waitBusy(t, sub, false)
	return cl, sub
}

// expectStalledDeltas reads the deltas stalledPeer queued, in order.
func (cl *client) expectStalledDeltas() {
	cl.t.Helper()
	for i := range stalledDeltas {
		if f := cl.expect("delta"); f.Seq != int64(i+1) {
			cl.t.Fatalf("delta %d has seq %d", i+1, f.Seq)
		}
	}
}

// TestDrainedCalledOnce: after WatchDrain the writer calls the hub's
// Drained once, when its queue is written (also when it was idle already),
// and not again until the next WatchDrain.
func TestDrainedCalledOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	sub := busySub(t, s, "u")
	drained := func(n int) {
		t.Helper()
		s.waitHub("Drained", func(h *hubtest.Hub) bool { return h.DrainedCount(sub) == n })
	}
	sub.WatchDrain() // the writer is idle: it is woken to say so
	drained(1)
	sub.WatchDrain()
	for i := range 3 {
		sub.Deliver(protocol.Delta("c", "m", int64(i+1), "x"))
	}
	for range 3 {
		cl.expect("delta")
	}
	drained(2)
	for seq := int64(4); seq < 6; seq++ { // without WatchDrain: no call
		sub.Deliver(protocol.Delta("c", "m", seq, "x"))
		cl.expect("delta")
	}
	sub.WatchDrain()
	drained(3)
	if sub.Busy() {
		t.Fatal("busy with nothing queued")
	}
}

// TestQueuedFramesOneWrite: frames that wait in a connection's queue when
// its writer comes to them go to the socket together, in one write (a
// send's ack, messages and conversation frame; deltas behind a slow
// write), and reach the client whole and in order. A frame alone goes out
// as it always did, in a write of its own.
func TestQueuedFramesOneWrite(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{smallBuffers: true, recordWrites: true})
	cl := s.dial(dialOptions{user: "u", paused: true, smallBuffer: true})
	sub := busySub(t, s, "u")
	// Larger than both sockets' buffers: the writer stays in this write
	// until the client reads, and the next frames queue up behind it.
	sub.Deliver(protocol.Delta("c", "m", 1, strings.Repeat("x", 256<<10)))
	const n = 30
	for i := range n {
		sub.Deliver(protocol.Delta("c", "m", int64(i+2), fmt.Sprintf("y%d.", i+2)))
	}
	close(cl.resume)
	cl.expect("hello")
	for i := range n + 1 {
		if f := cl.expect("delta"); f.Seq != int64(i+1) {
			t.Fatalf("delta %d has seq %d", i+1, f.Seq)
		}
	}
	first := s.writes.containing(`"y2."`)
	if len(first) != 1 || !bytes.Contains(first[0], []byte(fmt.Sprintf(`"y%d."`, n+1))) {
		t.Fatalf("the %d frames that waited behind the first were written in %d writes, want one", n, len(s.writes.containing(`"y`)))
	}
	sub.Deliver(protocol.Delta("c", "m", n+2, "alone"))
	if f := cl.expect("delta"); f.Seq != n+2 {
		t.Fatalf("last delta has seq %d", f.Seq)
	}
	last := s.writes.containing(`"alone"`)
	if len(last) != 1 || bytes.Contains(last[0], []byte(`"y`)) {
		t.Fatalf("the frame alone was written in %d writes, or with others", len(last))
	}
}
