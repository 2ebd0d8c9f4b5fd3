package hub

import (
	"context"
	"time"

	"chatd/persistence"
)

// titleTimeout bounds the title job of a new conversation: its store reads
// and writes and the title request (llm.Titler allows it 30s by default).
const titleTimeout = 40 * time.Second

// maybeTitle names the conversation after its first answer, if it has no
// title yet, and tells the owner's tabs. A failed or interrupted answer
// asks for no title (the upstream just failed, or the server is stopping):
// a later answer names the conversation. An answer in a conversation that
// had a title when it started (most answers) costs nothing here: no
// goroutine, no read of the store.
func (h *Hub) maybeTitle(g *generation, final persistence.MessageUpdate) {
	if h.opts.Titler == nil || g.titled || final.Status == persistence.StatusInterrupted || final.Status == persistence.StatusError {
		return
	}
	h.work.Add(1)
	go func() {
		defer h.work.Done()
		ctx, cancel := context.WithTimeout(h.base, titleTimeout)
		defer cancel()
		conv, err := h.opts.Store.Conversation(ctx, g.msg.OwnerID, g.msg.ConversationID)
		if err != nil || conv.Title != "" {
			return
		}
		g.conv.mu.Lock()
		answer := string(g.text)
		g.conv.mu.Unlock()
		title := h.opts.Titler(ctx, g.msg.Model, g.prompt, answer)
		if title == "" {
			return
		}
		// The user may have named it meanwhile: theirs wins.
		if conv, err = h.opts.Store.Conversation(ctx, g.msg.OwnerID, conv.ID); err != nil || conv.Title != "" {
			return
		}
		conv, err = h.opts.Store.UpdateConversation(ctx, g.msg.OwnerID, g.msg.ConversationID, persistence.ConversationPatch{Title: &title})
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("store conversation title", "conversation", g.msg.ConversationID, "err", err)
			}
			return
		}
		h.ConversationChanged(g.msg.OwnerID, "updated", conv)
	}()
}
