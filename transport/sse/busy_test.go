package sse_test

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/sse"
)

// busyStream is the hub-side view of an event stream.
type busyStream interface {
	hub.Subscriber
	hub.Busy
	hub.DrainWatcher
}

// onlyStream waits for user's stream to register and returns it.
func onlyStream(t *testing.T, s *server, user string) busyStream {
	t.Helper()
	s.waitHub("the stream to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	sub, ok := s.hub.Subscribers(user)[0].(busyStream)
	if !ok {
		t.Fatal("the stream implements neither hub.Busy nor hub.DrainWatcher")
	}
	return sub
}

// TestStalledStreamNotBusy: an event stream whose client stopped reading
// (an event written for longer than StalledWrite) no longer tells the hub
// it is busy, though frames wait in its queue; before, it stayed busy
// until the write timeout ended it. Its queue bound and write timeout
// still apply, as TestStoppedReaderDisconnected checks.
func TestStalledStreamNotBusy(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{StalledWrite: 20 * time.Millisecond}, true)
	conn := dialSmall(t, strings.TrimPrefix(s.srv.URL, "http://"))
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: chatd\r\nAuthorization: Bearer token-u\r\n\r\n")
	if line, err := bufio.NewReaderSize(conn, 512).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q %v", line, err)
	}
	sub := onlyStream(t, s, "u")
	conv, msg := persistence.NewID(), persistence.NewID()
	text := strings.Repeat("x", 16<<10)
	for i := range 40 { // far more than the socket buffers hold
		sub.Deliver(protocol.Delta(conv, msg, int64(i+1)*int64(len(text)), text))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for sub.Busy() {
		select {
		case <-ctx.Done():
			t.Fatal("a stalled stream still says it is busy")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestStreamDrained: after WatchDrain the stream's writer calls the hub's
// Drained once its queue is written (also when it was idle already), and
// not for frames written without a WatchDrain.
func TestStreamDrained(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	r := bufio.NewReader(s.request("u", "GET", "/api/events", "").Body)
	sub := onlyStream(t, s, "u")
	drained := func(n int) {
		t.Helper()
		s.waitHub("Drained", func(h *hubtest.Hub) bool { return h.DrainedCount(sub) == n })
	}
	frame := func() *protocol.Frame {
		return protocol.Conversation("updated", persistence.Conversation{ID: persistence.NewID()})
	}
	read := func() {
		t.Helper()
		if ev, err := readEvent(t, r); err != nil || ev.name != "conversation" {
			t.Fatalf("event %+v %v", ev, err)
		}
	}
	sub.WatchDrain()
	drained(1)
	sub.WatchDrain()
	for range 3 {
		sub.Deliver(frame())
	}
	for range 3 {
		read()
	}
	drained(2)
	for range 2 {
		sub.Deliver(frame())
		read()
	}
	sub.WatchDrain()
	drained(3)
	if sub.Busy() {
		t.Fatal("busy with nothing queued")
	}
}

// TestStreamQueueBytes: a stream's writer gives back the bytes of every
// frame it takes (from the queue's channel too), so a client that reads
// passes many times QueueBytes through its stream without being closed as
// too slow. (The bound itself: outbox.TestQueueBytes and, end to end,
// ws.TestRepeatedResumesClosed4408.)
func TestStreamQueueBytes(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("x", 8<<10)
	delta := func(i int) *protocol.Frame { return protocol.Delta("c", "m", int64(i+1)*int64(len(text)), text) }
	s := newServer(t, sse.Options{QueueBytes: 64 << 10}, false)
	r := bufio.NewReader(s.request("u", "GET", "/api/events", "").Body)
	sub := onlyStream(t, s, "u")
	for i := range 40 { // 320 KiB, one frame at a time
		sub.Deliver(delta(i))
		if ev, err := readEvent(t, r); err != nil || ev.name != "delta" {
			t.Fatalf("frame %d: event %+v %v", i, ev, err)
		}
	}
}
