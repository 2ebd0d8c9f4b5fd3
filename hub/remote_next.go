package hub

// mirrorNextLocked mirrors, now that the local answer of c ended, the
// answer that started on another instance while it still ran here
// (c.next, see mirrorLocked): this instance was cut off or paused, the
// others took its answer over and ended it, and the conversation's next
// answer began elsewhere before the store's refusal of this answer's text
// ended it here. Its tabs then get that answer from its start, as when
// its start comes after. c.mu is held.
func (h *Hub) mirrorNextLocked(c *conv) {
	next := c.next
	if next == nil || c.remote != nil {
		return // none, or the mirror running here takes it when it ends (endLocked)
	}
	c.next = nil
	if len(c.subs) > 0 {
		h.mirrorLocked(c, *next)
	}
	c.handNextLocked(next.MessageID)
}
