package hub

import (
	"slices"

	"chatd/hub/protocol"
)

// Subscriber is one client connection (a WebSocket, an SSE stream) as the
// hub sees it.
type Subscriber interface {
	// UserID is the authenticated owner of the connection.
	UserID() string
	// ConnectionID names the connection in logs.
	ConnectionID() string
	// Deliver queues f for the client. It must never block: a subscriber
	// that cannot keep up disconnects itself.
	Deliver(f *protocol.Frame)
	// Close ends the connection with code and reason (for example when the
	// user logs out).
	Close(code protocol.CloseCode, reason string)
}

// Session is what a Subscriber may also implement to say which session of
// its user it was opened with: the token version of the token it
// authenticated with. Hub.CloseRevoked ends those of revoked sessions.
type Session interface {
	TokenVersion() int64
}

// Busy is what a Subscriber may also implement to say it is still writing
// or holding queued frames; the hub then merges the next deltas instead of
// handing it one more frame at once (see generation.flushNowLocked). A
// subscriber whose peer stopped reading (a write in flight far longer than
// usual) should not say it is busy: its queue bound and write timeout deal
// with it, and the other tabs of its conversations would otherwise get
// their deltas only when the coalescing interval ends.
type Busy interface {
	Busy() bool
}

// DrainWatcher is what a Busy subscriber may also implement so that text
// held back because it was busy goes out as soon as it is not, rather than
// when the coalescing interval ends. WatchDrain asks it to call
// Hub.Drained with itself once, the next time it has written every frame
// queued. WatchDrain is called with a conversation's lock held: it must
// not block nor call into the hub. Drained must be called from the
// goroutine that writes the subscriber's frames, holding none of the
// subscriber's locks (the hub may deliver frames to it from inside).
type DrainWatcher interface {
	WatchDrain()
}

// FrameReleaser is what a Subscriber may also implement to say that it
// calls Release on every frame Deliver hands it, once, after its last
// read of the frame (its Data included: the write to its client done),
// or when it drops the frame unwritten. The hub then builds an answer's
// next delta in a frame every tab released (protocol.Frames) rather than
// allocating one per delta; a frame a subscriber never releases is never
// reused. A subscriber that keeps a frame past its Release, or releases
// one twice, lets the hub overwrite bytes another tab may still be
// writing.
type FrameReleaser interface {
	ReleasesFrames()
}

// follower is one subscriber of a conversation with the optional
// interfaces it implements, asserted once when it starts following rather
// than at every delta.
type follower struct {
	sub   Subscriber
	busy  Busy         // nil when sub does not implement Busy
	drain DrainWatcher // nil when sub does not implement DrainWatcher
	// releases: sub implements FrameReleaser.
	releases bool
}

// followers is the set of a conversation's subscribers, in the order they
// started following. A conversation has a few tabs at most, and every
// delta walks the set (to ask who is busy, then to deliver), so a slice
// is cheaper than a map: no iterator to set up, no hashing, no type
// assertion per delta.
type followers []follower

// add puts sub in the set unless it is there already.
func (fs *followers) add(sub Subscriber) {
	if fs.has(sub) {
		return
	}
	f := follower{sub: sub}
	f.busy, _ = sub.(Busy)
	f.drain, _ = sub.(DrainWatcher)
	_, f.releases = sub.(FrameReleaser)
	*fs = append(*fs, f)
}

// remove takes sub out of the set, keeping the others' order.
func (fs *followers) remove(sub Subscriber) {
	*fs = slices.DeleteFunc(*fs, func(f follower) bool { return f.sub == sub })
}

// release reports whether every subscriber in the set releases the
// frames it is handed (FrameReleaser).
func (fs followers) release() bool {
	for i := range fs {
		if !fs[i].releases {
			return false
		}
	}
	return true
}

// has reports whether sub is in the set.
func (fs followers) has(sub Subscriber) bool {
	return slices.ContainsFunc(fs, func(f follower) bool { return f.sub == sub })
}
