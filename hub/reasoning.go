package hub

import (
	"time"

	"chatd/hub/protocol"
)

// An answer's reasoning ("thinking") is a stream of its own beside the
// text: reasoning frames carry it with their own byte cursor (rseq), it is
// coalesced and checkpointed like the text, caught up and resumed with
// lastReasoningSeq, stored in Message.Reasoning, and never sent upstream
// again (buildPrompt reads Content only).

// onReasoning is called by the model stream, in order, from the
// generation's goroutine, with reasoning text.
func (g *generation) onReasoning(text string) {
	c := g.conv
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if text = g.capLocked(len(g.reasoning), text); text == "" {
		return
	}
	g.tokenLocked(now)
	g.reasoning = append(g.reasoning, text...)
	g.hub.opts.Writer.AppendReasoning(g.msg.ID, text)
	g.scheduleLocked(now, g.rsent == 0)
}

// flushReasoningLocked delivers the reasoning not yet sent as one frame;
// conv.mu is held.
func (g *generation) flushReasoningLocked(now time.Time) {
	if len(g.reasoning) == g.rsent {
		return
	}
	f := protocol.Reasoning(g.msg.ConversationID, g.msg.ID, int64(g.sent), int64(len(g.reasoning)), g.reasoning[g.rsent:])
	g.rsent = len(g.reasoning)
	g.lastFlush = now
	g.conv.deliverLocked(f)
	g.hub.opts.Metrics.DeltaSent(len(g.conv.subs))
}

// catchUpReasoningLocked sends sub the reasoning after rfrom, up to what the
// other subscribers have been sent, in pieces (catchup.go), as frames
// whose text cursor is from,
// the text sub has (the text after it follows in a delta: an SSE id past
// it would skip that text on a reconnect); conv.mu is held.
func (g *generation) catchUpReasoningLocked(sub Subscriber, from, rfrom int64) {
	for start, end := range catchUpBounds(g.reasoning, int(rfrom), g.rsent) {
		sub.Deliver(protocol.Reasoning(g.msg.ConversationID, g.msg.ID, from, int64(end), g.reasoning[start:end]))
	}
}

// reasoningCursor is a resume's reasoning cursor (0 when not given).
func reasoningCursor(req SubscribeRequest) int64 {
	if req.LastReasoningSeq == nil {
		return 0
	}
	return *req.LastReasoningSeq
}

// checkReasoningSeq validates a reasoning resume cursor against reasoning.
func checkReasoningSeq(reasoning []byte, rseq int64) error {
	if err := checkSeq(reasoning, rseq); err != nil {
		return protocol.Errorf(protocol.CodeBadSeq, "lastReasoningSeq %d is outside the reasoning (%d bytes) or inside a character", rseq, len(reasoning))
	}
	return nil
}
