package natsbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/hub"
)

// TestLocksPutBackAfterJetStreamLost: once NATS lost its data (every
// bucket and stream deleted) and was set up again (by either instance), the locks of the answers an instance runs are put back,
// so another instance cannot take the conversation for a second answer
// and the instance's crash leaves them to be claimed; a lock released
// before is not. Before, the locks were gone for good: another instance
// took the conversation's lock while the first answer still ran.
func TestLocksPutBackAfterJetStreamLost(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "relock-owner", time.Second)
	peer, _ := newBus(t, c, "relock-peer", time.Second)
	waitHealthy(t, ctx, owner, peer)

	running := answer("c-relock", "m-running", owner.InstanceID())
	ended := answer("c-relock-ended", "m-ended", owner.InstanceID())
	for _, a := range []hub.AnswerRef{running, ended} {
		if _, err := owner.Acquire(ctx, a); err != nil {
			t.Fatalf("acquire %s: %v", a.MessageID, err)
		}
	}
	if err := owner.Release(ctx, ended); err != nil {
		t.Fatal(err)
	}
	names := owner.js.StreamNames(ctx)
	var streams []string
	for name := range names.Name() {
		streams = append(streams, name)
	}
	if names.Err() != nil || len(streams) == 0 {
		t.Fatalf("list the streams: %v", names.Err())
	}
	for _, name := range streams { // every bucket and stream: NATS lost its data
		if err := owner.js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for {
		ref, found, err := peer.Running(ctx, running.ConversationID)
		if err == nil && found {
			if ref != running {
				t.Fatalf("the lock put back is %+v, want %+v", ref, running)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the running answer's lock is never put back (%v)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	second := answer("c-relock", "m-second", peer.InstanceID())
	if _, err := peer.Acquire(ctx, second); !errors.Is(err, hub.ErrLockHeld) {
		t.Fatalf("a second answer in the conversation: %v, want ErrLockHeld", err)
	}
	if _, found, err := peer.Running(ctx, ended.ConversationID); err != nil || found {
		t.Fatalf("the released lock is back: %v, %v", found, err)
	}
}
