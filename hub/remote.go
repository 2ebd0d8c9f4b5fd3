package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// mirror is an answer running on another instance as this hub's tabs see
// it: it follows the answer's stream on the bus from its first frame,
// hands every frame (the owner's encoded bytes) to the conversation's
// subscribers, and rebuilds the answer's text so that a tab joining or
// resuming here is caught up exactly as for a local answer: no gap, no
// duplicate. Its state is guarded by conv.mu, like a generation's.
type mirror struct {
	h      *Hub
	conv   *conv
	ref    AnswerRef
	cancel context.CancelFunc

	// Guarded by conv.mu.
	message   *protocol.Frame      // the answer's message frame, once received
	text      []byte               // the answer's text so far
	reasoning []byte               // the answer's reasoning so far
	aheadR    map[Subscriber]int64 // reasoning cursors of subscribers in ahead
	ahead     map[Subscriber]int64 // resumed subscribers whose cursor is past text
	// announce are subscribers in ahead that resumed without naming the
	// answer and wait for its message frame, which says which it is.
	announce map[Subscriber]bool
	ended    bool // its done (or abort) was handled
	// looseReasoning: the reasoning was taken from the store
	// (fillFromStore) and may run past the reasoning frames still to come.
	looseReasoning bool
}

// remoteStarted is told that answer a started on another instance; if tabs
// here follow its conversation, they get it mirrored.
func (h *Hub) remoteStarted(a AnswerRef) {
	if a.Instance == h.self {
		return
	}
	h.mirrorFound(a)
}

// followRemote mirrors the answer running elsewhere in a conversation sub
// just began to follow. It runs after sub was added, so an answer that
// starts later is announced (remoteStarted) and one that started before is
// found here; both paths may find the same answer, which is mirrored once.
// A lookup cut because the subscribe's own context was cancelled (its
// connection is closing) is no bus failure: nothing is told or logged.
func (h *Hub) followRemote(ctx context.Context, convID string, sub Subscriber) {
	if h.solo {
		return
	}
	c := h.lookup(convID)
	if c == nil {
		return
	}
	c.mu.Lock()
	busy := c.gen != nil || c.remote != nil || c.reservedLocked()
	c.mu.Unlock()
	if busy {
		return
	}
	a, ok, err := h.lookupRunning(ctx, convID)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	if err != nil {
		// Like a mirror that fails: error, then close, so the tab
		// reconnects and subscribes again once the bus is back (an open
		// tab would never learn of the answer running elsewhere).
		sub.Deliver(protocol.ErrorFrame(nil, protocol.Errorf(protocol.CodeUnavailable,
			"answers running on other servers cannot be shown now; reconnecting")))
		sub.Close(protocol.CloseGoingAway, "cluster bus unavailable; reconnect and subscribe again")
		h.log.Warn("look up the running answer", "conversation", convID, "err", err)
		return
	}
	if ok && h.mirrorable(a) {
		h.mirrorFound(a)
	}
}

// lookupAttempts is how many times a tab that began to follow a
// conversation asks the bus which answer runs there before it gives up
// (tryFew).
const lookupAttempts = 4

// lookupRunning is bus.Running for a tab that just began to follow
// convID, or that resumes an answer there. A failed lookup is tried again
// as tryFew does: a bus that fails for a moment (a reconnect, a leader
// election) does not cost the tab its connection, and a tab whose
// connection closes stops asking. It returns the last lookup's result.
func (h *Hub) lookupRunning(ctx context.Context, convID string) (a AnswerRef, ok bool, err error) {
	err = h.tryFew(ctx, "look up the running answer", func(ctx context.Context) (err error) {
		a, ok, err = h.bus.Running(ctx, convID)
		return err
	})
	return a, ok, err
}

// tryFew calls fn until it succeeds (nil), lookupAttempts times at most,
// after pauses from Options.LookupPause on, doubling, all within one
// busTimeout and ctx; a call the bus refuses for good (ErrRefused) is not
// tried again. It returns fn's last error.
func (h *Hub) tryFew(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	pause := h.opts.LookupPause
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrRefused) {
			return err
		}
		h.busm.BusCallFailed(what)
		if attempt == lookupAttempts || !sleep(ctx, pause) {
			return err
		}
		pause *= 2
	}
}

// mirrorable reports whether answer a, found holding its conversation's
// lock, runs elsewhere: on another instance, or nowhere while this one
// takes it over from a dead one (its end, published by the take-over, then
// reaches the tabs here through the mirror like anywhere else). A lock of
// this instance otherwise belongs to a local answer (followed directly) or
// to one that never started (FrameAborted follows).
func (h *Hub) mirrorable(a AnswerRef) bool {
	if a.Instance != h.self {
		return true
	}
	h.bgMu.Lock()
	defer h.bgMu.Unlock()
	return h.taking[a.MessageID]
}

// mirrorFound mirrors answer a, found holding its conversation's lock, to
// the tabs following the conversation here.
func (h *Hub) mirrorFound(a AnswerRef) {
	c := h.lookup(a.ConversationID)
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.subs) > 0 {
		h.mirrorLocked(c, a)
	}
	c.mu.Unlock()
}

// resumeRemote resumes, for sub, the answer req names if it runs on another
// instance. Its lookup is retried as a following tab's is (lookupRunning):
// a resume during a bus blip is not refused.
func (h *Hub) resumeRemote(ctx context.Context, sub Subscriber, req SubscribeRequest, from int64) (bool, error) {
	if h.solo {
		return false, nil
	}
	a, ok, err := h.lookupRunning(ctx, req.ConversationID)
	if err != nil {
		return true, clusterError(err)
	}
	if !ok || req.MessageID != "" && a.MessageID != req.MessageID || !h.mirrorable(a) {
		return false, nil
	}
	c := h.lockConv(req.ConversationID, sub.UserID())
	defer h.release(c)
	defer c.mu.Unlock()
	h.mirrorLocked(c, a)
	return h.resumeMirrorLocked(c, sub, req, from)
}

// runningElsewhere returns the lock of answer messageID if it runs on
// another instance, else nil (also when the bus cannot say).
func (h *Hub) runningElsewhere(ctx context.Context, convID, messageID string) *AnswerRef {
	if h.solo {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	a, ok, err := h.bus.Running(ctx, convID)
	if err != nil || !ok || a.MessageID != messageID || a.Instance == h.self {
		return nil
	}
	return &a
}

// mirrorLocked makes sure answer a is mirrored in c, or will be once the
// answer running or mirrored in c ends (c.next); c.mu is held.
func (h *Hub) mirrorLocked(c *conv, a AnswerRef) {
	switch {
	case c.dead, c.gen != nil && c.gen.msg.ID == a.MessageID:
		return
	case a.MessageID == c.ended:
		// Its done reached the tabs here; its lock is still being
		// released: mirrored again, it would be replayed to them whole.
		return
	case c.gen == nil && c.remote == nil:
		ctx, cancel := context.WithCancel(h.base)
		m := &mirror{h: h, conv: c, ref: a, cancel: cancel}
		if h.spawn(&h.bg, func() { m.run(ctx) }) {
			c.remote = m
			h.busm.MirrorsChanged(1) // run counts it down when it returns
		} else {
			cancel()
		}
	case c.remote == nil || c.remote.ref.MessageID != a.MessageID:
		// The previous one has not been seen ending yet; or a local
		// answer still runs here, which the other instances took over
		// while this one was cut off or paused (its end here waits for
		// the store to refuse its text), so a started after it ended
		// for them: mirrored when it ends here too (mirrorNextLocked).
		if c.next != nil && c.next.MessageID != a.MessageID {
			c.failNextLocked() // it ended unseen: it will not be mirrored
		}
		c.next = &a
	}
}

// resumeMirrorLocked resumes the mirrored answer req names (any, when it
// names none) after from; c.mu is held. A resume that names no answer is
// sent the answer's message frame first, as for a local answer. One that
// names the answer waiting to be mirrored next (c.next) waits for it
// (resumeNextLocked).
func (h *Hub) resumeMirrorLocked(c *conv, sub Subscriber, req SubscribeRequest, from int64) (bool, error) {
	m := c.remote
	if m != nil && req.MessageID != "" && m.ref.MessageID != req.MessageID && c.next != nil &&
		c.next.MessageID == req.MessageID {
		h.resumeNextLocked(c, sub, req, from)
		return true, nil
	}
	if m == nil || req.MessageID != "" && m.ref.MessageID != req.MessageID {
		return false, nil
	}
	unnamed := req.unnamed()
	rfrom := reasoningCursor(req)
	caughtUp := from < int64(len(m.text)) || from == int64(len(m.text)) && m.message != nil
	caughtUp = caughtUp && rfrom <= int64(len(m.reasoning))
	// Each cursor within what the mirror holds is checked now, as a local
	// resume's is; one past it once the mirror reaches it (deliverLocked,
	// onReasoningLocked), or the answer ends short of it (refuseOverrunLocked).
	if from <= int64(len(m.text)) {
		if err := checkSeq(m.text, from); err != nil {
			return true, err
		}
	}
	if rfrom <= int64(len(m.reasoning)) {
		if err := checkReasoningSeq(m.reasoning, rfrom); err != nil {
			return true, err
		}
	}
	h.followLocked(c, sub)
	delete(c.nextAhead, sub) // it resumed this answer now
	sub.Deliver(protocol.Ack(req.FrameID))
	if unnamed && m.message != nil {
		sub.Deliver(m.message)
	}
	if caughtUp {
		m.catchUpReasoningLocked(sub, from, rfrom)
		m.catchUpLocked(sub, from, false)
	} else {
		if unnamed && m.message == nil {
			if m.announce == nil {
				m.announce = make(map[Subscriber]bool)
			}
			m.announce[sub] = true
		}
		// The mirror is still reading the stream up to the present: sub
		// gets the text from its cursor on when it gets there.
		m.resumeAheadLocked(sub, cursors{from, rfrom})
	}
	return true, nil
}

// resumeAheadLocked records sub as resumed past the text the mirror has
// read so far, at cursors at: it gets the answer's frames from there on
// once the mirror reaches them; conv.mu is held.
func (m *mirror) resumeAheadLocked(sub Subscriber, at cursors) {
	m.aheadLocked(sub, at.reasoning)
	if m.ahead == nil {
		m.ahead = make(map[Subscriber]int64)
	}
	m.ahead[sub] = at.text
}

// cursors are where a resume continues an answer: its text and its
// reasoning, in bytes.
type cursors struct{ text, reasoning int64 }

// resumeNextLocked resumes answer c.next, which req names, while the
// mirror of the answer before it (c.remote) has not read that one's end
// yet (its follow is behind): sub follows c, gets none of that answer's
// frames (it has them: it saw the answer it resumes start after that one
// ended), and, once c.next's mirror starts, is taken by it as resumed
// past its text at its cursors (handNextLocked), as by a mirror that is
// current (resumeMirrorLocked). conv.mu is held.
func (h *Hub) resumeNextLocked(c *conv, sub Subscriber, req SubscribeRequest, from int64) {
	h.followLocked(c, sub)
	sub.Deliver(protocol.Ack(req.FrameID))
	if c.nextAhead == nil {
		c.nextAhead = make(map[Subscriber]cursors)
	}
	c.nextAhead[sub] = cursors{from, reasoningCursor(req)}
}

// handNextLocked hands the tabs that resumed answer id while it was
// c.next (c.nextAhead) to its mirror, which endLocked just started, as
// resumed past its text; conv.mu is held. Without that mirror (it could
// not start) they are told to reconnect and resume.
func (c *conv) handNextLocked(id string) {
	if m := c.remote; m == nil || m.ref.MessageID != id {
		c.failNextLocked()
		return
	}
	for sub, at := range c.nextAhead {
		if c.subs.has(sub) {
			c.remote.resumeAheadLocked(sub, at)
		}
	}
	c.nextAhead = nil
}

// failNextLocked tells the tabs that resumed c.next, which will not be
// mirrored here, to reconnect and resume; conv.mu is held.
func (c *conv) failNextLocked() {
	for sub := range c.nextAhead {
		if c.subs.has(sub) {
			tellResumeAgain(sub)
		}
	}
	c.nextAhead = nil
}

// catchUpLocked is generation.catchUpLocked for a mirror; conv.mu is held.
func (m *mirror) catchUpLocked(sub Subscriber, from int64, withMessage bool) {
	delete(m.ahead, sub)
	delete(m.aheadR, sub)
	delete(m.announce, sub)
	if withMessage && m.message != nil {
		sub.Deliver(m.message)
	}
	if withMessage {
		m.catchUpReasoningLocked(sub, from, 0)
	}
	for start, end := range catchUpBounds(m.text, int(from), len(m.text)) {
		sub.Deliver(protocol.DeltaAt(m.ref.ConversationID, m.ref.MessageID, int64(end), int64(len(m.reasoning)),
			m.text[start:end]))
	}
}

func (m *mirror) stop() { m.cancel() }

// run follows the answer's stream until its done, the mirror is stopped
// (nobody here follows it any more, or shutdown) or the bus fails.
func (m *mirror) run(ctx context.Context) {
	defer m.h.busm.MirrorsChanged(-1)
	err := m.h.bus.Follow(ctx, m.ref, func(f *protocol.Frame) {
		if m.onFrame(f, false) {
			m.fillFromStore(ctx, f)
			m.onFrame(f, true)
		}
	})
	c := m.conv
	c.mu.Lock()
	failed := err != nil && ctx.Err() == nil && !m.ended
	if failed {
		m.h.busm.MirrorLost()
		m.h.log.Warn("lost an answer running on another instance", "message", m.ref.MessageID,
			"instance", m.ref.Instance, "err", err)
		m.failLocked()
	}
	m.endLocked()
	c.mu.Unlock()
	m.cancel()
	m.h.release(c)
}

// failLocked tells the followers that the answer can no longer be shown
// from here: an error frame, then their connection closes so that they
// reconnect and resume (on any instance, once the bus is back).
func (m *mirror) failLocked() {
	for _, s := range m.conv.subs {
		tellResumeAgain(s.sub)
	}
	m.conv.nextAhead = nil
}

// tellResumeAgain tells sub that the answer it follows can no longer be
// shown from here: an error frame, then its connection closes so that it
// reconnects and resumes.
func tellResumeAgain(sub Subscriber) {
	sub.Deliver(protocol.ErrorFrame(nil, protocol.Errorf(protocol.CodeUnavailable,
		"lost the connection to the server running this answer; reconnecting")))
	sub.Close(protocol.CloseGoingAway, "cluster bus unavailable; reconnect and resume")
}

// inconsistentLocked fails the followers of a stream that does not
// continue: they reconnect and load the answer anew; conv.mu is held.
func (m *mirror) inconsistentLocked(what string, attrs ...any) {
	m.h.log.Error("an answer's stream does not continue; its followers here reconnect",
		append([]any{"message", m.ref.MessageID, "part", what}, attrs...)...)
	m.failLocked()
	m.endLocked()
	m.cancel()
}

// endLocked retires m and mirrors the answer that started meanwhile, if any.
func (m *mirror) endLocked() {
	m.ended = true
	c := m.conv
	if c.remote != m {
		return
	}
	c.remote = nil
	if next := c.next; next != nil {
		c.next = nil
		if len(c.subs) > 0 {
			m.h.mirrorLocked(c, *next)
		}
		c.handNextLocked(next.MessageID)
	}
}

// onFrame applies one frame of the stream, in order. Unless filled (the
// store was asked for what comes before f), a frame that begins past
// what the mirror holds is left to the caller, which fills the hole from
// the store without conv.mu (fillFromStore): gap is then true.
func (m *mirror) onFrame(f *protocol.Frame, filled bool) (gap bool) {
	c := m.conv
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.ended || c.remote != m {
		return false
	}
	switch f.Type {
	case protocol.TypeDelta:
		return m.onDeltaLocked(f, filled)
	case protocol.TypeMessage:
		if f.MessageID == m.ref.MessageID {
			m.message = f
		}
		m.deliverLocked(f, 0)
	case protocol.TypeReasoning:
		return m.onReasoningLocked(f, filled)
	case protocol.TypeDone:
		if !filled && f.Seq > int64(len(m.text)) {
			return true
		}
		body, unsaved := unsavedDone(f)
		if !unsaved {
			m.refuseOverrunLocked(f.Seq)
		}
		m.doneLocked(f)
		c.ended = m.ref.MessageID
		if unsaved {
			m.h.unsaved.add(m.ref.MessageID, body, time.Now())
		}
		m.endLocked()
	case FrameStored:
		return m.storedLocked(f, filled)
	case FrameAborted:
		c.ended = m.ref.MessageID
		m.endLocked()
	default:
		m.deliverLocked(f, 0)
	}
	return false
}

// unstartedLocked reports whether the mirror has neither the answer's
// message frame nor any of its text: a frame of text then needs the
// message frame first (the bus discarded it); conv.mu is held.
func (m *mirror) unstartedLocked() bool {
	return m.message == nil && len(m.text) == 0 && len(m.reasoning) == 0
}

// onDeltaLocked applies one delta frame of the stream (see onFrame); conv.mu is held.
func (m *mirror) onDeltaLocked(f *protocol.Frame, filled bool) (gap bool) {
	from := len(m.text)
	text, err := deltaBytes(f)
	start := f.Seq - int64(len(text))
	if err == nil && !filled && (start > int64(from) || m.unstartedLocked()) {
		return true
	}
	if err != nil || start != int64(from) {
		m.inconsistentLocked("text", "seq", f.Seq, "have", from, "err", err)
		return false
	}
	m.text = append(m.text, text...)
	m.deliverLocked(withRSeq(f, len(m.reasoning)), from)
	m.h.opts.Metrics.DeltaSent(len(m.conv.subs))
	return false
}

// storedLocked catches the followers up with the stored text of an answer
// a dead instance ran (FrameStored, before its done): the stored bytes
// past what the stream carried. When the stream carried more than was
// stored, nothing is sent: the done that follows says the stored length
// (below what the followers have), and they reload. A stored text that
// begins past the streamed one is a hole (see onFrame); one that does not
// continue it fails the followers (they reconnect and load the stored
// answer).
func (m *mirror) storedLocked(f *protocol.Frame, filled bool) (gap bool) {
	tail, err := deltaText(f)
	have := int64(len(m.text))
	from := f.Seq - int64(len(tail))
	switch {
	case err == nil && !filled && (have < from || m.unstartedLocked()):
		return true
	case err == nil && have >= f.Seq:
		return false
	case err == nil && have >= from && string(m.text[from:]) == tail[:have-from]:
		rest := tail[have-from:]
		m.text = append(m.text, rest...)
		m.deliverLocked(protocol.DeltaAt(m.ref.ConversationID, m.ref.MessageID, f.Seq, int64(len(m.reasoning)), rest), int(have))
		return false
	}
	m.inconsistentLocked("stored text", "stored", f.Seq, "have", have, "err", err)
	return false
}

// storedFrame is the FrameStored of an answer's stored text.
func storedFrame(msg persistence.Message) *protocol.Frame {
	tail := msg.Content
	if len(tail) > storedTailMax {
		cut := len(tail) - storedTailMax
		for cut < len(tail) && !utf8.RuneStart(tail[cut]) {
			cut++
		}
		tail = tail[cut:]
	}
	data, _ := json.Marshal(struct {
		Text string `json:"text"`
	}{tail})
	return &protocol.Frame{Type: FrameStored, ConversationID: msg.ConversationID, MessageID: msg.ID,
		Seq: int64(len(msg.Content)), Data: data}
}

// storedTailMax bounds the text a FrameStored carries, within a bus
// message (see busTextMax). Followers that missed more than that of an
// answer are failed and reload it.
const storedTailMax = busTextMax

// deliverLocked hands f to the conversation's subscribers. A subscriber
// resumed past the text so far (ahead) gets nothing until a delta reaches
// its cursor, then only the text after it. from is where a delta's text
// begins.
func (m *mirror) deliverLocked(f *protocol.Frame, from int) {
	c := m.conv
	if len(m.ahead) == 0 && len(c.nextAhead) == 0 {
		for i := range c.subs {
			c.subs[i].sub.Deliver(f)
		}
		return
	}
	for _, s := range c.subs {
		sub := s.sub
		cursor, ok := m.ahead[sub]
		_, onNext := c.nextAhead[sub]
		switch {
		case onNext:
			// it resumed the answer after this one: this one is not its
		case !ok:
			sub.Deliver(f)
		case f.Type == protocol.TypeMessage && f.MessageID == m.ref.MessageID && m.announce[sub]:
			delete(m.announce, sub)
			sub.Deliver(f) // it resumed without naming the answer
		case f.Type != protocol.TypeDelta || f.Seq <= cursor:
			// before its cursor: it has this already
		case int(cursor) == from:
			delete(m.ahead, sub)
			delete(m.announce, sub)
			sub.Deliver(f)
		default:
			if err := checkSeq(m.text, cursor); err != nil {
				m.refuseLocked(sub, err)
				continue
			}
			delete(m.ahead, sub)
			delete(m.announce, sub)
			sub.Deliver(protocol.DeltaAt(m.ref.ConversationID, m.ref.MessageID, f.Seq, f.RSeq, m.text[cursor:]))
		}
	}
}

// refusedCursor is the cursor a mirror keeps for a subscriber whose
// resume cursor it refused (refuseLocked): no frame reaches it, so the
// subscriber, whose connection is closing, gets nothing more of the answer.
const refusedCursor = math.MaxInt64

// refuseLocked refuses the resume cursor of sub, resumed past what the
// mirror had read (ahead), once it is checked (err, checkSeq's or
// checkReasoningSeq's): sub is told as refuseCursor does and gets
// nothing more of the answer; conv.mu is held.
func (m *mirror) refuseLocked(sub Subscriber, err error) {
	delete(m.announce, sub)
	m.resumeAheadLocked(sub, cursors{refusedCursor, refusedCursor})
	refuseCursor(sub, err)
}

// refuseOverrunLocked refuses, when the answer's done comes with final
// bytes of text (its seq), the subscribers still resumed past what the
// mirror read whose text cursor is past final, or whose reasoning cursor
// is past the reasoning: a local resume refuses such a cursor (bad_seq),
// and the done would claim an answer shorter than what the tab says it
// has. conv.mu is held.
func (m *mirror) refuseOverrunLocked(final int64) {
	for sub, cursor := range m.ahead {
		if cursor != refusedCursor && cursor > final {
			m.refuseLocked(sub, protocol.Errorf(protocol.CodeBadSeq, "lastSeq %d is outside the answer (%d bytes)", cursor, final))
		}
	}
	for sub, cursor := range m.aheadR {
		if cursor != refusedCursor && cursor > int64(len(m.reasoning)) {
			m.refuseLocked(sub, checkReasoningSeq(m.reasoning, cursor))
		}
	}
}

// doneLocked hands the answer's done to its followers: every one still
// resumed past what the mirror read gets it too (the answer ends for it,
// whatever its cursor), but those whose cursor was refused. conv.mu is held.
func (m *mirror) doneLocked(f *protocol.Frame) {
	for sub, cursor := range m.ahead {
		if cursor != refusedCursor {
			delete(m.ahead, sub)
		}
	}
	m.deliverLocked(f, 0) // a done is no delta: the refused, left in ahead, get none
	clear(m.ahead)
	clear(m.aheadR)
	clear(m.announce)
}

// refuseCursor tells sub that its resume cursor, checked against the text
// (or reasoning) only once the mirror reached it, or the answer ended
// short of it, is refused (err, bad_seq), and closes its connection so
// that it reloads.
func refuseCursor(sub Subscriber, err error) {
	var perr *protocol.Error
	errors.As(err, &perr)
	sub.Deliver(protocol.ErrorFrame(nil, perr))
	sub.Close(protocol.CloseGoingAway, "resume cursor inside a character; reload") // the reason protocol.md names, past the answer too
}

// deltaText reads the text of an encoded delta frame. A frame as a hub
// encodes it (protocol's text frames: "type" first, "text" last; frames
// from the bus come from another instance's hub) whose text has no escape
// is read without decoding it, which is most frames; the rest go through
// encoding/json. Outside JSON strings, where every
// quote is escaped, `,"text":"` can only be the member itself.
func deltaText(f *protocol.Frame) (string, error) {
	text, err := deltaBytes(f)
	return string(text), err
}

// deltaBytes is deltaText without the copy: for most frames the text is a
// part of f.Data (which the caller must not change), so a mirror appends
// each delta's text to its own without allocating.
func deltaBytes(f *protocol.Frame) ([]byte, error) {
	const key = `,"text":"`
	if i := bytes.Index(f.Data, []byte(key)); i > 0 && bytes.HasPrefix(f.Data, []byte(`{"type":"`)) && bytes.HasSuffix(f.Data, []byte(`"}`)) {
		text := f.Data[i+len(key) : len(f.Data)-2]
		if unescaped(text) {
			return text, nil
		}
	}
	var d struct {
		Text string `json:"text"`
	}
	err := json.Unmarshal(f.Data, &d)
	return []byte(d.Text), err
}

// unescaped reports whether b, the inside of a JSON string, is its value
// as it stands: valid UTF-8 without a quote, a backslash or a control
// character (which JSON strings carry only escaped).
func unescaped(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(b)
}
