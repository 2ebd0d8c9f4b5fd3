package hub

import (
	"context"
	"errors"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// A bus keeps an answer's frames within limits (natsbus: the answer
// stream's age, size and frames per answer; docs/scale.md, "Sizing"). When
// they are reached the oldest frames go first, so a mirror that starts
// late in a long answer, or one that fell behind by the whole of what the
// stream keeps, may find frames gone: the next frame it reads continues a
// text it never saw (a bus outage can leave such a hole too). Rather than
// fail its followers (who would reconnect, mirror again and, for a late
// start, fail again until the answer ends), the mirror takes the missing
// text from the store, whose checkpoint of a running answer is recent
// while the frames lost are the oldest, hands it on as the frames lost
// would have been, and goes on from the stream.

// frameStart returns where the text and the reasoning of the answer stood
// before f (reasoning -1: f does not say), for the frames that may follow
// a hole (text, reasoning, stored text and done frames; ok false for the
// rest).
func frameStart(f *protocol.Frame) (text, reasoning int64, ok bool) {
	switch f.Type {
	case protocol.TypeDelta, FrameStored:
		t, err := deltaBytes(f)
		if err != nil {
			return 0, 0, false
		}
		return f.Seq - int64(len(t)), -1, true
	case protocol.TypeReasoning:
		rseq, rtext, err := reasoningOfFrame(f)
		if err != nil {
			return 0, 0, false
		}
		return f.Seq, rseq - int64(len(rtext)), true
	case protocol.TypeDone:
		return f.Seq, -1, true
	}
	return 0, 0, false
}

// fillFromStore gives the mirror what its answer's stored checkpoint holds
// between where the mirror stands and where f, the next frame, begins: the
// message frame if it has none, the reasoning, then the text, delivered
// to its followers as the frames lost would have been. It runs on the
// follow's goroutine, the only one that extends the mirror, and reads the
// store without conv.mu. When the store cannot fill the hole (not found,
// its checkpoint behind f, or a text that does not continue the
// mirror's), the mirror is left as it was: f then fails its followers as
// any frame that does not continue the stream does.
func (m *mirror) fillFromStore(ctx context.Context, f *protocol.Frame) {
	text, reasoning, _ := frameStart(f)
	c := m.conv
	c.mu.Lock()
	have, haveR := int64(len(m.text)), int64(len(m.reasoning))
	c.mu.Unlock()
	msg, err := m.storedPast(ctx, max(text, have), max(reasoning, haveR))
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.ended || c.remote != m {
		return
	}
	have, haveR = int64(len(m.text)), int64(len(m.reasoning))
	rEnd := reasoning
	if err == nil && rEnd < 0 {
		rEnd = max(int64(len(msg.Reasoning)), haveR)
	}
	switch {
	case err != nil:
	case int64(len(msg.Content)) < max(text, have) || int64(len(msg.Reasoning)) < max(rEnd, haveR):
		err = errors.New("its stored checkpoint is behind the next frame kept")
	case msg.Content[:have] != string(m.text) || msg.Reasoning[:haveR] != string(m.reasoning):
		err = errors.New("its stored text does not continue what was streamed")
	}
	if err != nil {
		if f.Type != protocol.TypeDone {
			m.h.log.Error("frames of an answer are gone from the bus and its text cannot be read from the store; its followers here reconnect",
				"message", m.ref.MessageID, "have", have, "next", text, "err", err)
		}
		return
	}
	m.h.log.Warn("the bus no longer holds frames of an answer (its limits were reached, or an outage lost them); their text is read from the store",
		"message", m.ref.MessageID, "have", have, "next", text)
	m.h.busm.MirrorFromStore()
	if m.message == nil {
		m.message = protocol.Message(startOf(msg))
		m.deliverLocked(m.message, 0)
	}
	// A delta does not say how much reasoning came before it: the stored
	// reasoning is taken whole and may run past reasoning frames to come.
	m.looseReasoning = m.looseReasoning || reasoning < 0
	// In pieces, as a catch-up: a hole may be most of an answer, and each
	// frame must reach a slow follower within its write deadline.
	for start, end := range catchUpBounds(msg.Reasoning, int(haveR), int(rEnd)) {
		m.onReasoningLocked(protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, have, int64(end), msg.Reasoning[start:end]), true)
	}
	for start, end := range catchUpBounds(msg.Content, int(have), int(text)) {
		m.onDeltaLocked(protocol.Delta(m.ref.ConversationID, m.ref.MessageID, int64(end), msg.Content[start:end]), true)
	}
}

// storedPast reads the answer's stored checkpoint until its text is at
// least text bytes long and its reasoning reasoning bytes, or it is
// final, for up to Options.HoleWait: a hole the bus left just now (a
// frame it refused) is usually past the last checkpoint, which the
// answer's instance writes every few hundred milliseconds. It returns the
// last read (a checkpoint still behind after the wait, for the caller to
// report), or the read's error.
func (m *mirror) storedPast(ctx context.Context, text, reasoning int64) (persistence.Message, error) {
	deadline := time.NewTimer(m.h.opts.HoleWait)
	defer deadline.Stop()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, busTimeout)
		msg, err := m.h.opts.Store.Message(rctx, m.ref.UserID, m.ref.MessageID)
		cancel()
		if err != nil || msg.Status.Final() ||
			int64(len(msg.Content)) >= text && int64(len(msg.Reasoning)) >= reasoning {
			return msg, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return msg, ctx.Err()
		case <-deadline.C:
			t.Stop()
			return msg, nil
		case <-t.C:
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
