package hub

import (
	"context"
	"sync"

	"chatd/hub/protocol"
)

// outbox holds the frames of one local answer until its publisher hands
// them to the bus. The generation pushes under conv.mu and never waits:
// bus I/O happens on the publisher's goroutine, so a slow or failed bus
// never slows the answer or its local tabs. It holds at most the frames of
// one answer (deltas are coalesced, and an answer is bounded by
// MaxDuration).
type outbox struct {
	ref  AnswerRef
	wake chan struct{} // buffered (1): frames wait

	mu     sync.Mutex
	frames []*protocol.Frame
}

// push queues f and reports whether it is the answer's last frame.
func (o *outbox) push(f *protocol.Frame) (last bool) {
	o.mu.Lock()
	o.frames = append(o.frames, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return f.Type == protocol.TypeDone || f.Type == FrameAborted
}

func (o *outbox) take() []*protocol.Frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	fs := o.frames
	o.frames = nil
	return fs
}

// publishLocked starts publishing the answer c is about to run under the
// cluster lock it took (nothing with one instance). c.mu is held; from
// here on every frame delivered in c goes to the bus too, up to the done.
func (h *Hub) publishLocked(c *conv) {
	if c.lock == nil {
		return
	}
	o := &outbox{ref: *c.lock, wake: make(chan struct{}, 1)}
	c.lock = nil
	if h.spawn(&h.pubs, func() { h.publish(o) }) {
		c.out = o
	}
}

// publish owns o: it publishes its frames in order, retrying failures,
// tells the other instances the answer started after its first frame,
// and releases the lock after the done frame.
func (h *Hub) publish(o *outbox) {
	started := false
	for {
		select {
		case <-o.wake:
		case <-h.busCtx.Done():
			return
		}
		for _, f := range mergeText(o.take()) {
			if !h.retry("publish answer frame", func(ctx context.Context) error { return h.bus.Publish(ctx, o.ref, f) }) {
				return
			}
			if !started {
				started = true
				h.broadcast(UserEvent{UserID: o.ref.UserID, Started: &o.ref})
			}
			if f.Type == protocol.TypeDone || f.Type == FrameAborted {
				h.retry("release conversation lock", func(ctx context.Context) error { return h.bus.Release(ctx, o.ref) })
				return
			}
		}
	}
}
