package ws_test

import (
	"testing"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
)

// TestNothingDeliveredAfterKick: a connection closed by a logout or a
// password change (4401) gets the frames queued before, then the close
// frame, and none of what its user's conversations produce after it. The
// kick lands while the writer is stuck behind a client that stopped
// reading, and a frame is delivered after it; the client then reads
// everything. Before, the connection stayed subscribed until it ended and
// its writer drained the queue until it was empty, frames queued after
// the kick included: a client reading slowly, but each frame within the
// write timeout, kept receiving the signed-out user's frames.
func TestNothingDeliveredAfterKick(t *testing.T) {
	t.Parallel()
	cl, sub := stalledPeer(t) // the writer is stuck: the kick waits behind its write
	sub.Close(protocol.CloseUnauthorized, protocol.ReasonSignedOut)
	const marker = "after the kick"
	sub.Deliver(protocol.Delta("c", "m", stalledDeltas+1, marker))
	close(cl.resume)
	if got := cl.closeStatus(); got != websocket.StatusCode(protocol.CloseUnauthorized) {
		t.Fatalf("closed with %d (%v), want 4401", got, cl.err)
	}
	cl.expect("hello")
	cl.expectStalledDeltas()
	select {
	case f := <-cl.frames:
		t.Fatalf("frame after the ones queued before the kick: %.200s", f.raw)
	default:
	}
}
