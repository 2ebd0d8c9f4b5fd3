package hub

// mirrorNextLocked mirrors, now that the local answer of c ended, the
// answer that started on another instance while it still ran here
// (c.next, see mirrorLocked): this instance was cut off or paused, the
// others took its answer over and ended it, and the conversation's next
// answer began elsewhere before the store's refusal of this answer's text
// ended it here. Its tabs then get that answer from its start, as when
// its start comes after. c.mu is held.
//
// Only an answer ended elsewhere (fenced: the store had taken its end
// from another instance) can have had another start during it: one that
// ended here held the conversation's lock throughout, so a start noted
// meanwhile was a stale event (the events stream read again after a bus
// blip), of an answer that ended before this one began; mirrored, it was
// replayed whole after this answer's done. It is dropped (the tabs that
// resumed it are told to resume again).
func (h *Hub) mirrorNextLocked(c *conv, fenced bool) {
	next := c.next
	if next == nil || c.remote != nil {
		return // none, or the mirror running here takes it when it ends (endLocked)
	}
	c.next = nil
	if !fenced {
		c.failNextLocked()
		return
	}
	if len(c.subs) > 0 {
		h.mirrorLocked(c, *next)
	}
	c.handNextLocked(next.MessageID)
}
