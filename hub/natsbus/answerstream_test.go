package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"chatd/hub/protocol"
)

// TestAnswerStreamLostAlone: the answer stream deleted (or lost with its
// replicas) while the buckets survive is set up again, Health failing
// until it is; an answer running across the loss gets its last frames
// and its done out, a follower elsewhere that missed the done live finds
// it in the new stream (whose positions start again below those it read
// of the old one), and a new answer publishes and is followed as
// before. Without it every publish failed for good ("stream not found"),
// no lock was released and Health said nothing.
func TestAnswerStreamLostAlone(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, _ := newBus(t, c, "lost-owner", time.Second)
	peer, _ := newBus(t, c, "lost-peer", time.Second)
	waitHealthy(t, ctx, owner, peer)
	peer.idleAfter = 200 * time.Millisecond
	dropDone := func(m *nats.Msg) bool { return m.Header.Get(hdrType) == protocol.TypeDone }
	peer.live.drop.Store(&dropDone) // the done is found in the stream only

	a := answer("c-lost", "m-lost", owner.InstanceID())
	frames := testFrames(a, 24)
	publish(t, ctx, owner, a, frames[:21])
	follow, got := make(chan followResult, 1), make(chan struct{})
	go func() { // the follower has every frame stored before the loss
		var fs []*protocol.Frame
		err := peer.Follow(ctx, a, func(f *protocol.Frame) {
			if fs = append(fs, f); len(fs) == 21 {
				close(got)
			}
		})
		follow <- followResult{fs, err}
	}()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("the follower did not get the frames stored")
	}

	gone, release := make(chan struct{}), make(chan struct{})
	found := func() { // the owner found the stream gone: it waits until released
		close(gone)
		<-release
	}
	wait := func() { <-release }
	owner.answersHook.Store(&found)
	peer.answersHook.Store(&wait)
	if err := owner.js.DeleteStream(ctx, owner.res.Load().stream); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
	case <-ctx.Done():
		t.Fatal("the answer stream's loss is never found")
	}
	if err := owner.Health(ctx); err == nil {
		t.Error("Health is nil while the answer stream is gone")
	}
	close(release)

	publish(t, ctx, owner, a, frames[21:])
	r := <-follow
	if r.err != nil {
		t.Fatalf("follow across the loss: %v", r.err)
	}
	checkFrames(t, "across the loss", r.frames, frames)

	b := answer("c-lost", "m-after", owner.InstanceID())
	after := testFrames(b, 3)
	next := followAsync(ctx, peer, b)
	publish(t, ctx, owner, b, after)
	r = <-next
	if r.err != nil {
		t.Fatalf("follow an answer after the stream was set up again: %v", r.err)
	}
	checkFrames(t, "after", r.frames, after)
	waitHealthy(t, ctx, owner, peer)
}
