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
//     instance was (UserEvent.At tells how long). Such a frame, older
//     than lateEventAge, is checked against the store before any tab gets
//     it (checkLate): dropped when the conversation is gone, else sent
//     with the conversation as stored now, not as it was then.
//
// Other frames (deltas, an answer's messages and done) never pass here.

// lateEventAge is how old another instance's conversation frame may be
// when it arrives and still go to the tabs as it is: events on the bus
// take milliseconds. One older is checked against the store first; a
// clock ahead of the broadcasting instance's by more than this only
// costs a store read per such frame.
const lateEventAge = time.Second

// deletedKept is how long this instance remembers that it told a
// conversation's deletion (between one and two of it): longer than an
// event on the bus takes when it is not late, and than a late frame's
// check (busTimeout).
const deletedKept = 2 * time.Minute

// lateQueueMax bounds the late frames waiting for their check; past it a
// new one is dropped (logged): its tabs show the change at their next
// reload, as for an event lost in an outage.
const lateQueueMax = 1024

// convGate is what decides whether a conversation frame reaches the
// tabs. The zero value is ready to use.
type convGate struct {
	// mu is held while a conversation frame is handed to the tabs, so
	// that a deletion told after a frame was let through reaches them
	// after it, and one told before keeps it from them.
	mu       sync.Mutex
	cur, old map[string]struct{} // conversations whose deletion was told here
	rotated  time.Time

	qmu      sync.Mutex
	queue    []lateFrame // late frames waiting for their check, oldest first
	checking bool        // a goroutine checks them (runLate)
	full     bool        // one was dropped for room since the queue was last empty
}

// lateFrame is a late conversation frame of another instance: the
// conversation of userID it tells of, and its action.
type lateFrame struct {
	userID, convID, action string
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
	if action == protocol.ActionDeleted {
		g.forgetLocked(convID, time.Now())
	} else if g.deletedLocked(convID) {
		h.log.Debug("conversation frame after its deletion dropped", "user", userID, "conversation", convID, "action", action)
		return
	}
	h.deliverUser(userID, f)
}

// deliverRemote hands the frame of ev, another instance's user event, to
// the user's connections here: a conversation frame through deliverConv,
// or, when it is late (UserEvent.At older than lateEventAge) and adds to
// the list, once checked against the store (checkLate).
func (h *Hub) deliverRemote(ev UserEvent) {
	f := ev.Frame
	action := protocol.ConversationAction(f)
	switch {
	case action == "":
		h.deliverUser(ev.UserID, f)
	case action != protocol.ActionDeleted && !ev.At.IsZero() && time.Since(ev.At) > lateEventAge:
		h.checkLate(lateFrame{userID: ev.UserID, convID: f.ConversationID, action: action})
	default:
		h.deliverConv(ev.UserID, f.ConversationID, action, f)
	}
}

// checkLate queues a late frame for its check, and starts the goroutine
// that checks them unless it runs. A user with no connection here needs
// none.
func (h *Hub) checkLate(lf lateFrame) {
	if h.Connections(lf.userID) == 0 {
		return
	}
	g := &h.convFrames
	g.qmu.Lock()
	if len(g.queue) >= lateQueueMax {
		first := !g.full
		g.full = true
		g.qmu.Unlock()
		if first {
			h.log.Warn("too many late conversation frames wait for their check; dropping the newest",
				"max", lateQueueMax, "user", lf.userID, "conversation", lf.convID)
		}
		return
	}
	g.queue = append(g.queue, lf)
	start := !g.checking
	g.checking = true
	g.qmu.Unlock()
	if start && !h.spawn(&h.bg, h.runLate) {
		g.qmu.Lock()
		g.queue, g.checking = nil, false // bus work stopped: nothing goes out any more
		g.qmu.Unlock()
	}
}

// runLate checks the late frames in the order they came, until none
// waits or bus work stops.
func (h *Hub) runLate() {
	for {
		lf, ok := h.nextLate()
		if !ok {
			return
		}
		h.deliverLate(lf)
	}
}

// nextLate takes the oldest late frame; false when none waits (the
// checking goroutine then ends) or bus work stopped.
func (h *Hub) nextLate() (lateFrame, bool) {
	g := &h.convFrames
	g.qmu.Lock()
	defer g.qmu.Unlock()
	if len(g.queue) == 0 || h.busCtx.Err() != nil {
		g.queue, g.checking, g.full = nil, false, false
		return lateFrame{}, false
	}
	lf := g.queue[0]
	g.queue = g.queue[1:]
	return lf, true
}

// deliverLate reads the conversation of a late frame as stored now (the
// latest state: a replica may lag behind the deletion) and hands it to
// the tabs with the frame's action; one no longer stored is dropped, as
// is the frame when the store cannot say (its tabs show the change at
// their next reload).
func (h *Hub) deliverLate(lf lateFrame) {
	ctx, cancel := context.WithTimeout(persistence.WithLatest(h.busCtx), busTimeout)
	defer cancel()
	c, err := h.opts.Store.Conversation(ctx, lf.userID, lf.convID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		h.log.Debug("late conversation frame of a deleted conversation dropped",
			"user", lf.userID, "conversation", lf.convID, "action", lf.action)
		return
	case err != nil:
		if h.busCtx.Err() == nil {
			h.log.Warn("read a conversation a late frame tells of; frame dropped",
				"user", lf.userID, "conversation", lf.convID, "err", err)
		}
		return
	}
	h.deliverConv(lf.userID, lf.convID, lf.action, protocol.Conversation(lf.action, c))
}
