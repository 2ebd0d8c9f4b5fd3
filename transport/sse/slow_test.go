package sse_test

import (
	"bufio"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/sse"
)

// slowCount counts the streams closed for being too slow, with why.
type slowCount struct {
	n    atomic.Int32
	slow chan string
}

func (m *slowCount) SlowClientDisconnected(reason string) {
	m.n.Add(1)
	m.slow <- reason
}

// TestSlowClientCounted: an event stream closed for a client that stopped
// reading is counted once, with why: its queue filled, or a write outlived
// WriteTimeout before it did; one closed for another reason (a shutdown)
// whose last frames then time out is not counted.
func TestSlowClientCounted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		queue        int
		writeTimeout time.Duration
		shutdown     bool
		want         string // "": not counted
	}{
		// The queue fills as the frames are delivered, long before WriteTimeout.
		{"queue full", 8, time.Minute, false, "queue_full"},
		{"write timed out", 4096, 200 * time.Millisecond, false, "write_timeout"},
		// The shutdown follows the frames at once, long before WriteTimeout
		// (5 s: a loaded machine may hold the test a second or two between).
		{"closing already", 4096, 5 * time.Second, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			metrics := &slowCount{slow: make(chan string, 4)}
			s := newServer(t, sse.Options{QueueSize: tc.queue, WriteTimeout: tc.writeTimeout, Metrics: metrics}, true)
			conv, msg := persistence.NewID(), persistence.NewID()
			s.hub.AddConversation(conv, "u", msg)
			conn := dialSmall(t, strings.TrimPrefix(s.srv.URL, "http://"))
			fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: chatd\r\nAuthorization: Bearer token-u\r\n\r\n")
			if line, err := bufio.NewReaderSize(conn, 512).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
				t.Fatalf("status line %q %v", line, err)
			}
			s.waitHub("the stream to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
			// The client reads no more: the frames fill the socket buffers,
			// then the queue.
			text := strings.Repeat("x", 16<<10)
			for i := range 200 {
				s.hub.DeliverAll("u", protocol.Delta(conv, msg, int64(i+1)*int64(len(text)), text))
			}
			if tc.shutdown {
				for _, sub := range s.hub.Subscribers("u") {
					sub.Close(protocol.CloseGoingAway, protocol.ReasonShutdown)
				}
			}
			if tc.want != "" {
				select {
				case got := <-metrics.slow:
					if got != tc.want {
						t.Fatalf("counted as %q, want %q", got, tc.want)
					}
				case <-time.After(testTimeout):
					t.Fatal("not counted")
				}
				conn.Close() // a write stuck on the full socket fails at once
			}
			s.waitHub("the stream to end", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
			want := int32(0)
			if tc.want != "" {
				want = 1
			}
			if n := metrics.n.Load(); n != want {
				t.Fatalf("counted %d times, want %d", n, want)
			}
		})
	}
}
