package sse_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/sse"
)

// TestNothingDeliveredAfterClose: an event stream closed by a logout or a
// password change gets the frames queued before, then its closed event,
// and none of what its user's conversations produce after it. The close
// lands while the stream's writer is stuck behind a client that stopped
// reading, and a frame is delivered after it; the client then reads
// everything. Before, frames delivered after the close were queued and
// written as the rest.
func TestNothingDeliveredAfterClose(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{StalledWrite: 20 * time.Millisecond}, true)
	conn := dialSmall(t, strings.TrimPrefix(s.srv.URL, "http://"))
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: chatd\r\nAuthorization: Bearer token-u\r\n\r\n")
	br := bufio.NewReaderSize(conn, 512)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("response %v %v", res, err)
	}
	sub := onlyStream(t, s, "u")
	conv, msg := persistence.NewID(), persistence.NewID()
	text := strings.Repeat("x", 16<<10)
	const n = 40 // far more than the socket buffers hold
	for i := range n {
		sub.Deliver(protocol.Delta(conv, msg, int64(i+1)*int64(len(text)), text))
	}
	waitStalled(t, sub) // the writer is stuck: the close waits behind its write
	sub.Close(protocol.CloseUnauthorized, protocol.ReasonSignedOut)
	const marker = "after the close"
	sub.Deliver(protocol.Delta(conv, msg, int64(n+1)*int64(len(text)), marker))
	r := bufio.NewReader(res.Body)
	deltas := 0
	for {
		ev, err := readEvent(t, r)
		if err != nil {
			t.Fatalf("after %d deltas: %v, want the closed event", deltas, err)
		}
		if strings.Contains(ev.data, marker) {
			t.Fatalf("event delivered after the close: %.200s", ev.data)
		}
		if ev.name == "closed" {
			if want := `{"type":"closed","closeCode":4401,"reason":"signed out"}`; ev.data != want {
				t.Fatalf("closed event %s, want %s", ev.data, want)
			}
			break
		}
		if ev.name != "delta" {
			t.Fatalf("event %+v", ev)
		}
		deltas++
	}
	if deltas != n {
		t.Fatalf("%d deltas before the closed event, want the %d queued before the close", deltas, n)
	}
	if ev, err := readEvent(t, r); err != io.EOF {
		t.Fatalf("after the closed event: %+v %v, want the end", ev, err)
	}
}

// waitStalled waits until sub's writer is stuck on an event (Busy false
// with frames queued), within testTimeout.
func waitStalled(t *testing.T, sub busyStream) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for sub.Busy() {
		if time.Now().After(deadline) {
			t.Fatal("the stream's writer never stalled")
		}
		time.Sleep(time.Millisecond)
	}
}
