package hub

import (
	"encoding/json"

	"chatd/hub/protocol"
)

// A mirror keeps an answer's reasoning like its text: reasoning frames
// from the bus are checked for continuity (rseq), kept, delivered, and
// caught up or resumed from a reasoning cursor.

// onReasoningLocked applies one reasoning frame of the stream (see
// onFrame); conv.mu is held.
func (m *mirror) onReasoningLocked(f *protocol.Frame, filled bool) (gap bool) {
	from := len(m.reasoning)
	rseq, rtext, err := reasoningOfFrame(f)
	start := rseq - int64(len(rtext))
	if err == nil && !filled && (start > int64(from) || f.Seq > int64(len(m.text)) || m.unstartedLocked()) {
		return true
	}
	if err == nil && m.looseReasoning && rseq != int64(from+len(rtext)) {
		rest, ok := m.trimReasoningLocked(rseq, rtext)
		switch {
		case ok && rest == "":
			return // held already
		case ok && rest != rtext:
			rtext = rest
			f = protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, f.Seq, rseq, rest)
		}
	}
	if err != nil || rseq != int64(from+len(rtext)) {
		m.inconsistentLocked("reasoning", "rseq", rseq, "have", from, "err", err)
		return false
	}
	m.reasoning = append(m.reasoning, rtext...)
	f = withRSeq(f, len(m.reasoning))
	for _, s := range m.conv.subs {
		sub := s.sub
		cursor, ahead := m.aheadR[sub]
		_, onNext := m.conv.nextAhead[sub]
		switch {
		case onNext:
			// it resumed the answer after this one (deliverLocked)
		case !ahead:
			sub.Deliver(f)
		case cursor <= int64(from):
			sub.Deliver(f)
		case cursor > rseq:
			// not reached yet
		default:
			// Reached now: checked as a local resume checks it.
			if err := checkReasoningSeq(m.reasoning, cursor); err != nil {
				m.refuseLocked(sub, err)
			} else if cursor < rseq {
				sub.Deliver(protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, f.Seq, rseq, string(m.reasoning[cursor:])))
			}
		}
	}
	m.h.opts.Metrics.DeltaSent(len(m.conv.subs))
	return false
}

// reasoningOfFrame reads a reasoning frame's cursor after it and its text.
func reasoningOfFrame(f *protocol.Frame) (rseq int64, text string, err error) {
	var r struct {
		RSeq int64  `json:"rseq"`
		Text string `json:"text"`
	}
	err = json.Unmarshal(f.Data, &r)
	return r.RSeq, r.Text, err
}

// catchUpReasoningLocked sends sub the mirrored reasoning after rfrom, as
// a frame whose text cursor is from, the text sub has (see
// generation.catchUpReasoningLocked); conv.mu is held.
func (m *mirror) catchUpReasoningLocked(sub Subscriber, from, rfrom int64) {
	for start, end := range catchUpBounds(m.reasoning, int(rfrom), len(m.reasoning)) {
		sub.Deliver(protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, from, int64(end), m.reasoning[start:end]))
	}
}

// aheadLocked records the reasoning cursor of a subscriber that resumed
// past what the mirror has read so far; conv.mu is held.
func (m *mirror) aheadLocked(sub Subscriber, rfrom int64) {
	if m.aheadR == nil {
		m.aheadR = make(map[Subscriber]int64)
	}
	m.aheadR[sub] = rfrom
}

// withRSeq returns f carrying the reasoning cursor rseq (for SSE ids): f
// itself when it already does, else a copy (a bus may not carry the field).
func withRSeq(f *protocol.Frame, rseq int) *protocol.Frame {
	if f.RSeq == int64(rseq) {
		return f
	}
	c := *f
	c.RSeq = int64(rseq)
	return &c
}
