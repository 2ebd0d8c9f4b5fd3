package hub

import (
	"context"
	"errors"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// A bus keeps an answer's frames within limits (natsbus: the answer
// stream's age, size and frames per answer; docs/scale.md, "Sizing"). When
// they are reached the oldest frames go first, so a mirror that starts
// late in a long answer may find its first frames gone: the first frame
// it reads continues a text it never saw. Rather than fail its followers
// (who would reconnect, mirror again and fail again until the answer
// ends), the mirror takes the text before that frame from the store,
// whose checkpoint of a running answer is recent while the frames lost
// are the oldest, and goes on from the stream.

// lateStart returns where the text (and the reasoning, -1: not known from
// this frame) of the answer stood before f, the first frame a mirror
// reads, when that is past the answer's beginning; late is false when f
// may start the answer (its message frame, a done, text from offset 0).
func lateStart(f *protocol.Frame) (text, reasoning int64, late bool) {
	switch f.Type {
	case protocol.TypeDelta, FrameStored:
		t, err := deltaBytes(f)
		if err != nil {
			return 0, 0, false
		}
		text = f.Seq - int64(len(t))
		return text, -1, text > 0
	case protocol.TypeReasoning:
		rseq, rtext, err := reasoningOfFrame(f)
		if err != nil {
			return 0, 0, false
		}
		reasoning = rseq - int64(len(rtext))
		return f.Seq, reasoning, f.Seq > 0 || reasoning > 0
	}
	return 0, 0, false
}

// joinLate seeds m with the stored text of its answer up to where f, the
// first frame m reads, begins, if the stream no longer holds the frames
// before f. It runs on the follow's goroutine, before f is applied; the
// store is read without conv.mu. When the store cannot give that text
// (not found, or its checkpoint is behind f), m is left as it was and f
// fails its followers as any inconsistent frame does.
func (m *mirror) joinLate(ctx context.Context, f *protocol.Frame) {
	text, reasoning, late := lateStart(f)
	if !late {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	msg, err := m.h.opts.Store.Message(ctx, m.ref.UserID, m.ref.MessageID)
	cancel()
	if err == nil && (int64(len(msg.Content)) < text || int64(len(msg.Reasoning)) < reasoning) {
		err = errors.New("its stored checkpoint is behind the first frame kept")
	}
	if err != nil {
		m.h.log.Error("an answer's first frames are gone from the bus and its text so far cannot be read from the store; its followers here reconnect",
			"message", m.ref.MessageID, "from", text, "err", err)
		return
	}
	m.h.log.Warn("the bus no longer holds an answer's first frames (its limits were reached); its text so far is read from the store",
		"message", m.ref.MessageID, "from", text)
	m.h.busm.MirrorFromStore()
	seed := msg
	seed.Content = msg.Content[:text]
	if reasoning >= 0 {
		seed.Reasoning = msg.Reasoning[:reasoning]
	}
	c := m.conv
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.ended || c.remote != m {
		return
	}
	m.seedLocked(seed, reasoning < 0)
}

// seedLocked makes seed's text and reasoning the mirror's so far and
// catches its followers up with them: those that followed from the start
// get the answer's message frame and everything, those resumed at a
// cursor within them the rest. looseReasoning says the seed's reasoning
// may run past the frames to come (see onReasoningLocked). conv.mu is held.
func (m *mirror) seedLocked(seed persistence.Message, looseReasoning bool) {
	m.text = []byte(seed.Content)
	m.reasoning = []byte(seed.Reasoning)
	m.looseReasoning = looseReasoning
	start := seed
	start.Content, start.Reasoning = "", ""
	start.Status, start.FinishReason, start.Usage, start.Error, start.ErrorCode = persistence.StatusStreaming, "", nil, "", ""
	m.message = protocol.Message(start)
	for _, s := range m.conv.subs {
		sub := s.sub
		cursor, ahead := m.ahead[sub]
		rcursor := m.aheadR[sub]
		switch {
		case !ahead:
			m.catchUpLocked(sub, 0, true)
		case cursor > int64(len(m.text)) || rcursor > int64(len(m.reasoning)):
			// still ahead: deliverLocked gives it the rest when the text reaches it
		default:
			if err := checkSeq(m.text, cursor); err != nil {
				delete(m.ahead, sub)
				delete(m.aheadR, sub)
				refuseCursor(sub, err)
				continue
			}
			m.catchUpReasoningLocked(sub, rcursor)
			m.catchUpLocked(sub, cursor, false)
		}
	}
}

// trimReasoningLocked returns the part of reasoning frame r (text rtext
// ending at rseq) past what the mirror holds, for a mirror seeded with
// reasoning that may run past the frames (looseReasoning): nothing when
// the mirror holds it all, ok false when the part it holds differs.
func (m *mirror) trimReasoningLocked(rseq int64, rtext string) (rest string, ok bool) {
	start, have := rseq-int64(len(rtext)), int64(len(m.reasoning))
	if start >= have || start < 0 {
		return rtext, true
	}
	overlap := min(rseq, have) - start
	if string(m.reasoning[start:start+overlap]) != rtext[:overlap] {
		return "", false
	}
	return rtext[overlap:], true
}
