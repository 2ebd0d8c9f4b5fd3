package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// A conversation frame that adds to a tab's list (created, updated: a
// rename, a title, an answer moving it up) must not reach a tab after
// the conversation's deletion, or the tab shows a conversation that no
// longer exists until it is clicked or the page reloaded: the deletion's
// own frame went out before, and a tab that read its list since never
// saw it. Two things let such a frame come late:
//
//   - this instance told the deletion a moment before (a title stored
//     just before the delete, told just after it; another instance's
//     frame overtaken by the deletion on the bus): the instance remembers
//     the conversations whose deletion it told for deletedKept
//     (convGate), and drops what comes for them meanwhile;
//   - another instance's event waited, up to minutes: in its outbox while
//     it was cut off from the bus, or in the bus's stream while this
//     instance was. No clock tells such a frame from a fresh one (two
//     hosts' clocks may disagree by more than the bus takes), so every
//     created or updated frame of another instance is checked against
//     the store before any tab here gets it (checkRemote): dropped when
//     the conversation is gone, else sent with the conversation as
//     stored now, not as it was then. These frames come one per send,
//     rename or title, not per token: one store read each is cheap.
//
// Other frames (deltas, an answer's messages and done) never pass here.

// deletedKept is how long this instance remembers that it told a
// conversation's deletion (between one and two of it): longer than an
// event on the bus takes when it is not late, and than a remote frame's
// check once it began (convRereads reads of busTimeout at most).
const deletedKept = 2 * time.Minute

// convChecksMax bounds the conversations whose check waits; past it the
// frame of a new one is dropped (logged, with the count once the queue
// is empty): its tabs show the change at their next reload, as for an
// event lost in an outage. Frames of a conversation already waiting are
// merged into its check, so this bounds distinct conversations: four
// times what a cut-off instance's outbox holds.
const convChecksMax = 16384

// convCheckTimeout bounds one check's read of the store. Past it the
// frame goes out unchecked, as before there was a check, and so do the
// frames of every conversation for convUncheckedFor after it: one
// checking goroutine serves every user here, and a store that hangs
// (a primary this instance cannot reach) would otherwise hold each
// user's frames a timeout apiece, minutes behind in a burst.
const convCheckTimeout = time.Second

// convUncheckedFor is how long frames go out unchecked after a check's
// read timed out (convCheckTimeout).
const convUncheckedFor = 10 * time.Second

// convRereads is how many times a check reads the store while frames of
// its conversation go to the tabs during each read; past it the check's
// result is dropped (logged), the tabs holding a frame newer than its
// read began.
const convRereads = 3

// convGate is what decides whether a conversation frame reaches the
// tabs. The zero value is ready to use.
type convGate struct {
	// mu is held while a conversation frame is handed to the tabs, so
	// that a deletion told after a frame was let through reaches them
	// after it, and one told before keeps it from them; and while the
	// checks' queue changes.
	mu       sync.Mutex
	cur, old map[string]struct{} // conversations whose deletion was told here
	rotated  time.Time

	waiting  map[convKey]*remoteConv // another instance's frames waiting for their check, one per conversation
	queue    []convKey               // their order, the first come first
	checking bool                    // a goroutine checks them (runChecks)
	max      int                     // bounds len(queue); 0 is convChecksMax (tests lower it)
	dropped  int                     // frames dropped for room since the queue was last empty

	reading convKey // the conversation whose check reads the store, if inRead
	inRead  bool
	moved   bool // a frame of reading went to the tabs since its read began

	uncheckedUntil time.Time // frames go out unchecked until then (a read timed out)
}

// convKey names a conversation of a user.
type convKey struct{ userID, convID string }

// remoteConv is what another instance told of a conversation that waits
// for its check: its first created frame and its newest updated one
// (either nil when none came), sent as they are when the store cannot
// say. The check sends a created frame, then an updated one, as the
// frames merged held them, both of the conversation as stored now: a tab
// that never had the conversation learns that it appeared, and one that
// made it learns that it was used elsewhere (the web client gives up an
// empty conversation it made only while nothing else used it).
type remoteConv struct {
	created, updated *protocol.Frame
}

// add merges f, a frame of action, into rc.
func (rc *remoteConv) add(action string, f *protocol.Frame) {
	if action == "created" {
		if rc.created == nil {
			rc.created = f
		}
		return
	}
	rc.updated = f
}

// merge adds what older, an earlier check's frames, held to rc (a newer
// check of the same conversation, which reads later).
func (rc *remoteConv) merge(older remoteConv) {
	if older.created != nil {
		rc.created = older.created
	}
	if rc.updated == nil {
		rc.updated = older.updated
	}
}

// each calls send for the actions rc holds, created first, with its frame.
func (rc remoteConv) each(send func(action string, f *protocol.Frame)) {
	if rc.created != nil {
		send("created", rc.created)
	}
	if rc.updated != nil {
		send("updated", rc.updated)
	}
}

// deletedLocked reports whether the deletion of convID was told here
// lately; g.mu is held.
func (g *convGate) deletedLocked(convID string) bool {
	_, cur := g.cur[convID]
	_, old := g.old[convID]
	return cur || old
}

// forgetLocked records that the deletion of convID is told; g.mu is held.
func (g *convGate) forgetLocked(convID string, now time.Time) {
	if g.cur == nil || now.Sub(g.rotated) > deletedKept {
		g.old, g.cur, g.rotated = g.cur, make(map[string]struct{}), now
	}
	g.cur[convID] = struct{}{}
}

// deliverConv hands f, the conversation frame of action telling of
// convID, to every connection of userID here, unless it adds a
// conversation whose deletion was told here lately (dropped).
func (h *Hub) deliverConv(userID, convID, action string, f *protocol.Frame) {
	g := &h.convFrames
	g.mu.Lock()
	defer g.mu.Unlock()
	h.deliverConvLocked(userID, convID, action, f)
}

// deliverConvLocked is deliverConv with g.mu held. A check reading the
// conversation meanwhile learns that a frame went out (moved).
func (h *Hub) deliverConvLocked(userID, convID, action string, f *protocol.Frame) {
	g := &h.convFrames
	if action == protocol.ActionDeleted {
		g.forgetLocked(convID, time.Now())
	} else if g.deletedLocked(convID) {
		h.log.Debug("conversation frame after its deletion dropped", "user", userID, "conversation", convID, "action", action)
		return
	}
	if g.inRead && g.reading == (convKey{userID, convID}) {
		g.moved = true
	}
	h.deliverUser(userID, f)
}

// deliverRemote hands the frame of ev, another instance's user event, to
// the user's connections here: a deletion through deliverConv, a created
// or updated conversation frame once checked against the store
// (checkRemote), any other frame as it is.
func (h *Hub) deliverRemote(ev UserEvent) {
	f := ev.Frame
	switch action := protocol.ConversationAction(f); action {
	case "":
		h.deliverUser(ev.UserID, f)
	case protocol.ActionDeleted:
		h.deliverConv(ev.UserID, f.ConversationID, action, f)
	default:
		h.checkRemote(ev.UserID, action, f)
	}
}

// checkRemote queues f, another instance's created or updated frame of
// a conversation of userID, for its check (merged into the one waiting
// for that conversation), and starts the goroutine that checks them
// unless it runs. A user with no connection here needs none.
func (h *Hub) checkRemote(userID, action string, f *protocol.Frame) {
	if h.Connections(userID) == 0 {
		return
	}
	g := &h.convFrames
	key := convKey{userID, f.ConversationID}
	g.mu.Lock()
	if w := g.waiting[key]; w != nil {
		w.add(action, f)
		g.mu.Unlock()
		return
	}
	if time.Now().Before(g.uncheckedUntil) {
		h.deliverConvLocked(userID, key.convID, action, f)
		g.mu.Unlock()
		return
	}
	if len(g.queue) >= g.capacity() {
		g.dropped++
		first := g.dropped == 1
		g.mu.Unlock()
		if first {
			h.log.Warn("too many conversations wait for the check of another instance's frame; dropping new ones",
				"max", g.capacity(), "user", userID, "conversation", key.convID)
		}
		return
	}
	if g.waiting == nil {
		g.waiting = make(map[convKey]*remoteConv)
	}
	rc := &remoteConv{}
	rc.add(action, f)
	g.waiting[key] = rc
	g.queue = append(g.queue, key)
	start := !g.checking
	g.checking = true
	g.mu.Unlock()
	if start && !h.spawn(&h.bg, h.runChecks) {
		g.mu.Lock()
		g.resetLocked() // bus work stopped: nothing goes out any more
		g.mu.Unlock()
	}
}

// capacity is how many conversations may wait for their check.
func (g *convGate) capacity() int {
	if g.max > 0 {
		return g.max
	}
	return convChecksMax
}

// resetLocked empties the checks' queue (the checking goroutine ends);
// g.mu is held. It returns how many frames were dropped for room.
func (g *convGate) resetLocked() int {
	dropped := g.dropped
	g.waiting, g.queue, g.checking, g.dropped = nil, nil, false, 0
	return dropped
}

// runChecks checks the conversations waiting in the order they came,
// until none waits or bus work stops.
func (h *Hub) runChecks() {
	for {
		key, rc, ok := h.nextCheck()
		if !ok {
			return
		}
		h.check(key, rc)
	}
}

// nextCheck takes the first conversation waiting, marked as read
// (convGate.reading); false when none waits (the checking goroutine then
// ends) or bus work stopped.
func (h *Hub) nextCheck() (convKey, remoteConv, bool) {
	g := &h.convFrames
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 || h.busCtx.Err() != nil {
		if dropped := g.resetLocked(); dropped > 0 {
			h.log.Warn("frames of other instances dropped: too many conversations waited for their check",
				"dropped", dropped, "max", g.capacity())
		}
		return convKey{}, remoteConv{}, false
	}
	key := g.queue[0]
	g.queue = g.queue[1:]
	rc := *g.waiting[key]
	delete(g.waiting, key)
	g.reading, g.inRead, g.moved = key, true, false
	return key, rc, true
}

// check reads the conversation of rc as stored now (the latest state: a
// replica may lag behind the deletion) and hands it to the tabs with
// rc's action; one no longer stored is dropped. When a frame of it went
// to the tabs during the read, that frame may be newer than what was
// read: it reads again. When the store cannot say, rc's own frame goes
// out, as before there was a check.
func (h *Hub) check(key convKey, rc remoteConv) {
	g := &h.convFrames
	g.mu.Lock()
	if time.Now().Before(g.uncheckedUntil) {
		rc.each(func(action string, f *protocol.Frame) { h.deliverConvLocked(key.userID, key.convID, action, f) })
		g.inRead, g.moved = false, false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	for reads := 1; ; reads++ {
		c, err := h.readChecked(key)
		g.mu.Lock()
		timedOut := errors.Is(err, context.DeadlineExceeded) && h.busCtx.Err() == nil
		if timedOut {
			// Whatever the check then does (a newer frame of the
			// conversation waiting, one sent during the read), the
			// frames after it go out unchecked for a while.
			g.uncheckedUntil = time.Now().Add(convUncheckedFor)
			h.log.Warn("read a conversation another instance's frame tells of: timed out; frames sent unchecked for a while",
				"user", key.userID, "conversation", key.convID, "timeout", convCheckTimeout, "for", convUncheckedFor)
		}
		if g.moved && !timedOut && reads < convRereads && h.busCtx.Err() == nil {
			g.moved = false
			g.mu.Unlock()
			continue
		}
		h.checkedLocked(key, rc, c, err, reads)
		g.inRead, g.moved = false, false
		g.mu.Unlock()
		return
	}
}

// readChecked reads the conversation key names, from the latest state.
func (h *Hub) readChecked(key convKey) (persistence.Conversation, error) {
	ctx, cancel := context.WithTimeout(persistence.WithLatest(h.busCtx), convCheckTimeout)
	defer cancel()
	return h.opts.Store.Conversation(ctx, key.userID, key.convID)
}

// checkedLocked hands the tabs what the check of rc found: c, or rc's
// own frame when the store failed (err); g.mu is held. Nothing goes out
// when the conversation is gone, when a newer frame of it waits for its
// own check (which reads later; it takes rc's action), or when frames of
// it went to the tabs during every read (reads: how many it made; one
// that timed out is not made again, a frame sent here meanwhile being
// newer than what rc told).
func (h *Hub) checkedLocked(key convKey, rc remoteConv, c persistence.Conversation, err error, reads int) {
	g := &h.convFrames
	attrs := []any{"user", key.userID, "conversation", key.convID}
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		h.log.Debug("another instance's frame of a deleted conversation dropped", attrs...)
	case g.waiting[key] != nil:
		g.waiting[key].merge(rc)
	case g.moved:
		h.log.Warn("another instance's conversation frame dropped: frames of it went to the tabs during each of its reads",
			append(attrs, "reads", reads)...)
	case err != nil:
		if h.busCtx.Err() != nil {
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) { // a timeout was logged by check
			h.log.Warn("read a conversation another instance's frame tells of; frame sent unchecked", append(attrs, "err", err)...)
		}
		rc.each(func(action string, f *protocol.Frame) { h.deliverConvLocked(key.userID, key.convID, action, f) })
	default:
		rc.each(func(action string, _ *protocol.Frame) {
			h.deliverConvLocked(key.userID, key.convID, action, protocol.Conversation(action, c))
		})
	}
}
