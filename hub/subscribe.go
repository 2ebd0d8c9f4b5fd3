package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// SubscribeRequest asks to follow a conversation and, optionally, to resume
// one answer after the first lastSeq bytes a client already has.
type SubscribeRequest struct {
	FrameID        json.RawMessage
	ConversationID string
	MessageID      string
	LastSeq        *int64
	// LastReasoningSeq is the reasoning cursor of the resume (nil: 0).
	LastReasoningSeq *int64
	// Announce says MessageID was named for a client that named none (GET
	// .../stream resumes the answer running as it opened): a running answer
	// is announced with its message frame first, as to a subscribe naming
	// none, and one that ended meanwhile is still resumed by name.
	Announce bool
}

// Subscribe makes sub follow a conversation. It acks, then catches sub up:
// with a running answer, a message frame and one delta with all the text
// sent so far (or, when resuming that answer, only what follows lastSeq);
// when resuming an answer that already ended, the rest of its stored text
// and its done frame first (for an answer whose end this instance could
// not store, a done as its live tabs got: unsaved.go), then the answer
// running now from its start, as the answers ran: a client cut after that
// done has all of the ended answer and none of the running one, as its
// last event says. A lastSeq
// without a messageId applies to the answer running now (as if messageId
// named it); with nothing running it has nothing to resume and is ignored.
func (h *Hub) Subscribe(ctx context.Context, sub Subscriber, userID string, req SubscribeRequest) error {
	if c := h.lookup(req.ConversationID); c == nil || c.owner != userID {
		if _, err := h.ownedConversation(ctx, userID, req.ConversationID); err != nil {
			return err
		}
	}
	from := int64(0)
	if req.LastSeq != nil {
		from = *req.LastSeq
	}
	if req.MessageID != "" || req.LastSeq != nil {
		if resumed, err := h.resumeLive(sub, req, from); resumed || err != nil {
			return err
		}
		if resumed, err := h.resumeRemote(ctx, sub, req, from); resumed || err != nil {
			return err
		}
	}
	var rest []*protocol.Frame // of the ended answer resumed, encoded before the lock
	if req.MessageID != "" {
		m, err := h.storedAnswer(ctx, userID, req)
		if err != nil {
			return err
		}
		m, unsaved := h.unsaved.end(m, time.Now()) // ended here, its end not stored: ended as its done said
		from, rfrom, err := storedCursors(m, from, reasoningCursor(req), unsaved)
		if err != nil {
			return err
		}
		rest = storedRest(m, from, rfrom)
		if req.Announce { // named for the client as it ran: say which answer it is, as a running one's catch-up does
			rest = append([]*protocol.Frame{protocol.Message(startOf(m))}, rest...)
		}
	}
	c := h.lockConv(req.ConversationID, userID)
	h.followLocked(c, sub)
	sub.Deliver(protocol.Ack(req.FrameID))
	for _, f := range rest { // before the running answer's catch-up and its next frames
		sub.Deliver(f)
	}
	if g := c.gen; g != nil {
		g.catchUpLocked(sub, 0, 0, true)
	} else if m := c.remote; m != nil {
		delete(c.nextAhead, sub) // it follows this answer now, then the next from its start
		m.catchUpLocked(sub, 0, true)
	}
	c.mu.Unlock()
	h.followRemote(ctx, c.id, sub)
	return nil
}

// storedRest is what a client that has the ended answer m up to from (and
// its reasoning up to rfrom) lacks: the rest of its reasoning and text, in
// pieces (catchup.go), and its done frame once its stored state is final.
func storedRest(m persistence.Message, from, rfrom int64) []*protocol.Frame {
	var out []*protocol.Frame
	for start, end := range catchUpBounds(m.Reasoning, int(rfrom), len(m.Reasoning)) {
		out = append(out, protocol.Reasoning(m.ConversationID, m.ID, from, int64(end), m.Reasoning[start:end]))
	}
	for start, end := range catchUpBounds(m.Content, int(from), len(m.Content)) {
		out = append(out, protocol.DeltaAt(m.ConversationID, m.ID, int64(end), int64(len(m.Reasoning)), m.Content[start:end]))
	}
	if m.Status.Final() {
		out = append(out, protocol.Done(m, storedError(m)))
	}
	return out
}

// startOf is answer m as its message frame announced it when it started:
// streaming, without text or reasoning, which its deltas then bring.
func startOf(m persistence.Message) persistence.Message {
	m.Content, m.Reasoning = "", ""
	m.Status, m.FinishReason, m.Usage, m.Error, m.ErrorCode = persistence.StatusStreaming, "", nil, "", ""
	return m
}

// resumeLive resumes the answer req names (any running answer when it
// names none) if it is running: it acks and sends the text after from, and
// sub follows the conversation.
func (h *Hub) resumeLive(sub Subscriber, req SubscribeRequest, from int64) (bool, error) {
	c := h.lockConv(req.ConversationID, sub.UserID())
	defer h.release(c)
	defer c.mu.Unlock()
	g := c.gen
	if g == nil || req.MessageID != "" && g.msg.ID != req.MessageID {
		return h.resumeMirrorLocked(c, sub, req, from)
	}
	g.sendHeldForLocked(from, reasoningCursor(req))
	if err := checkSeq(g.text[:g.sent], from); err != nil {
		return true, err
	}
	if err := checkReasoningSeq(g.reasoning[:g.rsent], reasoningCursor(req)); err != nil {
		return true, err
	}
	h.followLocked(c, sub)
	sub.Deliver(protocol.Ack(req.FrameID))
	g.catchUpLocked(sub, from, reasoningCursor(req), req.unnamed()) // say which answer it is
	return true, nil
}

// unnamed reports whether the client named no answer: a resume then first
// sends the answer's message frame, which says which answer it is.
func (req SubscribeRequest) unnamed() bool {
	return req.MessageID == "" || req.Announce
}

// sendHeldForLocked sends every tab the text and reasoning the coalescer
// holds back when a resume's cursors (from, rfrom) reach into them: the
// store has that text already (Writer.Append comes before the delta), so
// a client that read the answer's last checkpoint (REST) resumes from
// there, and gets exactly what follows, as the other tabs do. conv.mu is
// held.
func (g *generation) sendHeldForLocked(from, rfrom int64) {
	if from > int64(g.sent) && from <= int64(len(g.text)) || rfrom > int64(g.rsent) && rfrom <= int64(len(g.reasoning)) {
		g.flushLocked(time.Now())
	}
}

// Unsubscribe stops sub following a conversation.
func (h *Hub) Unsubscribe(sub Subscriber, conversationID string) {
	if c := h.lookup(conversationID); c != nil {
		h.unfollow(c, sub)
	}
}

// catchUpLocked sends sub the answer's reasoning after rfrom and text after
// from, up to what the other subscribers have been sent, in pieces
// (catchup.go), so the next frames continue them exactly. withMessage
// first announces the answer itself. conv.mu is held.
func (g *generation) catchUpLocked(sub Subscriber, from, rfrom int64, withMessage bool) {
	if withMessage {
		sub.Deliver(protocol.Message(g.msg))
	}
	g.catchUpReasoningLocked(sub, from, rfrom)
	for start, end := range catchUpBounds(g.text, int(from), g.sent) {
		sub.Deliver(protocol.DeltaAt(g.msg.ConversationID, g.msg.ID, int64(end), int64(g.rsent), g.text[start:end]))
	}
}

// storedAnswer loads the answer a resume names, once its generation has
// ended (its stored state is then final, unless its end could not be
// stored: unsaved.go). It reads the latest state
// (persistence.WithLatest): a replica lagging behind the answer's end
// would answer it without its done, or refuse a cursor past the text it
// has.
func (h *Hub) storedAnswer(ctx context.Context, userID string, req SubscribeRequest) (persistence.Message, error) {
	m, err := h.opts.Store.Message(persistence.WithLatest(ctx), userID, req.MessageID)
	if errors.Is(err, persistence.ErrNotFound) || err == nil && m.ConversationID != req.ConversationID {
		return m, protocol.Errorf(protocol.CodeNotFound, "message %s not found in this conversation", req.MessageID)
	}
	if err != nil {
		return m, fmt.Errorf("load message %s: %w", req.MessageID, err)
	}
	if m.Role != persistence.RoleAssistant {
		return m, protocol.Errorf(protocol.CodeInvalidField, "messageId must name an answer")
	}
	return m, nil
}

// storedCursors checks a resume's cursors, from in the text and rfrom in
// the reasoning, against the stored answer m, and returns them as
// storedRest takes them. For an answer whose end was not stored
// (unsaved) a cursor past the stored text or reasoning is taken as at
// its end: the tab got what was streamed after the last checkpoint,
// which the failing database did not take either, and the done (at the
// stored length) tells it so.
func storedCursors(m persistence.Message, from, rfrom int64, unsaved bool) (int64, int64, error) {
	if unsaved {
		from, rfrom = min(from, int64(len(m.Content))), min(rfrom, int64(len(m.Reasoning)))
	}
	if err := checkReasoningSeq([]byte(m.Reasoning), rfrom); err != nil {
		return from, rfrom, err
	}
	return from, rfrom, checkSeq([]byte(m.Content), from)
}

// storedError rebuilds the error of a done frame from a stored answer.
func storedError(m persistence.Message) *protocol.ErrorBody {
	switch m.Status {
	case persistence.StatusInterrupted:
		return &protocol.ErrorBody{Code: protocol.CodeShutdown, Message: firstNonEmpty(m.Error, "The answer was interrupted.")}
	case persistence.StatusError:
		// Answers stored before error codes were kept say upstream_error.
		return &protocol.ErrorBody{Code: firstNonEmpty(m.ErrorCode, "upstream_error"), Message: firstNonEmpty(m.Error, "The answer failed.")}
	}
	return nil
}

// checkSeq validates a resume cursor against text.
func checkSeq(text []byte, seq int64) error {
	if seq < 0 || seq > int64(len(text)) {
		return protocol.Errorf(protocol.CodeBadSeq, "lastSeq %d is outside the answer (%d bytes)", seq, len(text))
	}
	if seq < int64(len(text)) && !utf8.RuneStart(text[seq]) {
		return protocol.Errorf(protocol.CodeBadSeq, "lastSeq %d falls inside a character", seq)
	}
	return nil
}
