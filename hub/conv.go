package hub

import (
	"sync"

	"chatd/hub/protocol"
)

// conv is the live state of one conversation: who follows it and the
// answer running in it. Everything in it is guarded by mu, which is also
// held while a generation appends text and delivers its deltas, so that
// catching up and following are one atomic step.
type conv struct {
	id    string
	owner string

	mu   sync.Mutex
	subs followers
	gen  *generation // the running answer, or nil
	// unreserved is set while a send or regenerate prepares a generation
	// (the conversation is reserved) and closed when the reservation ends
	// (its answer started, or it was given up).
	unreserved chan struct{}
	dead       bool // removed from the hub: look it up again
	// slot is the user whose answer slot the reserved or running answer
	// holds (answers.go), "" for none.
	slot string

	// Cluster state (remote.go, publish.go); all nil with one instance.
	remote *mirror    // an answer running on another instance, mirrored here
	next   *AnswerRef // a remote answer that started before remote ended
	// nextAhead are the tabs that resumed next by name before remote's end
	// was read, with their cursors: none of remote's frames are theirs,
	// and next's mirror takes them as resumed past its text (handNextLocked).
	nextAhead map[Subscriber]cursors
	ended     string     // the last answer mirrored here to its end (done or aborted)
	lock      *AnswerRef // the cluster lock taken for the reserved answer
	out       *outbox    // frames of the local answer waiting to be published
	halt      error      // a stop that came for the reserved answer before it ran
}

// deliverLocked queues f for the bus, then hands it to every subscriber:
// a frame a tab here has seen is already in the outbox. Neither step
// blocks, so this is safe under c.mu.
func (c *conv) deliverLocked(f *protocol.Frame) {
	if c.out != nil && c.out.push(f) {
		c.out = nil // the answer's last frame
	}
	for i := range c.subs {
		c.subs[i].sub.Deliver(f)
	}
}

// runningIDLocked is the id of the answer running here or mirrored, or "".
func (c *conv) runningIDLocked() string {
	switch {
	case c.gen != nil:
		return c.gen.msg.ID
	case c.remote != nil:
		return c.remote.ref.MessageID
	}
	return ""
}

// busyLocked reports whether any subscriber says it is busy (Busy), or
// the answer's frames are still being published to the bus; c.mu is held.
// The first busy subscriber that can say when it drained (DrainWatcher) is
// asked to, so that text held back for it goes out then (Hub.Drained).
func (c *conv) busyLocked() bool {
	if c.out != nil && c.out.busy() {
		return true
	}
	for i := range c.subs {
		if f := &c.subs[i]; f.busy != nil && f.busy.Busy() {
			if f.drain != nil {
				f.drain.WatchDrain()
			}
			return true
		}
	}
	return false
}

// idleLocked reports whether the state can be forgotten.
func (c *conv) idleLocked() bool {
	return len(c.subs) == 0 && c.gen == nil && !c.reservedLocked()
}

// reservedLocked reports whether a send or regenerate is preparing a
// generation; c.mu is held.
func (c *conv) reservedLocked() bool { return c.unreserved != nil }

// lookup returns the live state of a conversation, or nil.
func (h *Hub) lookup(id string) *conv {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.convs[id]
}

// lockConv returns the conversation's state, created if needed, locked.
// The caller unlocks c.mu and, when it may have left the state idle,
// calls h.release(c).
func (h *Hub) lockConv(id, owner string) *conv {
	for {
		h.mu.Lock()
		c := h.convs[id]
		if c == nil {
			c = &conv{id: id, owner: owner}
			h.convs[id] = c
		}
		h.mu.Unlock()
		c.mu.Lock()
		if !c.dead {
			return c
		}
		c.mu.Unlock()
	}
}

// release forgets c if nobody follows it and nothing runs in it.
func (h *Hub) release(c *conv) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	h.dropIfIdleLocked(c)
}

// dropIfIdleLocked needs h.mu and c.mu held.
func (h *Hub) dropIfIdleLocked(c *conv) {
	if c.idleLocked() && !c.dead {
		c.dead = true
		delete(h.convs, c.id)
		if c.remote != nil {
			c.remote.stop() // nobody here follows it any more
			c.remote, c.next, c.nextAhead = nil, nil, nil
		}
	}
}

// followLocked adds sub to c's subscribers; c.mu is held.
func (h *Hub) followLocked(c *conv, sub Subscriber) {
	if sub == nil {
		return
	}
	c.subs.add(sub)
	h.followMu.Lock()
	m := h.follows[sub]
	if m == nil {
		m = make(map[string]*conv)
		h.follows[sub] = m
	}
	m[c.id] = c
	h.followMu.Unlock()
}

// unfollow removes sub from c's subscribers and forgets c if it is idle.
func (h *Hub) unfollow(c *conv, sub Subscriber) {
	c.mu.Lock()
	c.subs.remove(sub)
	c.mu.Unlock()
	h.followMu.Lock()
	if m := h.follows[sub]; m != nil && m[c.id] == c {
		delete(m, c.id)
	}
	h.followMu.Unlock()
	h.release(c)
}
