package lograte

// Keys is how many messages and errors h's counts hold.
func (h *Handler) Keys() int {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	return len(h.state.runs)
}
