package hub

import (
	"encoding/json"

	"chatd/hub/protocol"
)

// A mirror keeps an answer's reasoning like its text: reasoning frames
// from the bus are checked for continuity (rseq), kept, delivered, and
// caught up or resumed from a reasoning cursor.

// onReasoningLocked applies one reasoning frame of the stream; conv.mu is held.
func (m *mirror) onReasoningLocked(f *protocol.Frame) {
	var r struct {
		RSeq int64  `json:"rseq"`
		Text string `json:"text"`
	}
	from := len(m.reasoning)
	err := json.Unmarshal(f.Data, &r)
	if err == nil && m.looseReasoning && r.RSeq != int64(from+len(r.Text)) {
		rest, ok := m.trimReasoningLocked(r.RSeq, r.Text)
		switch {
		case ok && rest == "":
			return // held already
		case ok && rest != r.Text:
			r.Text = rest
			f = protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, f.Seq, r.RSeq, rest)
		}
	}
	if err != nil || r.RSeq != int64(from+len(r.Text)) {
		m.h.log.Error("an answer's reasoning stream is inconsistent; its followers here reconnect",
			"message", m.ref.MessageID, "rseq", r.RSeq, "have", from, "err", err)
		m.failLocked()
		m.endLocked()
		m.cancel()
		return
	}
	m.reasoning = append(m.reasoning, r.Text...)
	f = withRSeq(f, len(m.reasoning))
	for _, s := range m.conv.subs {
		sub := s.sub
		cursor, ahead := m.aheadR[sub]
		switch {
		case !ahead:
			sub.Deliver(f)
		case cursor <= int64(from):
			sub.Deliver(f)
		case cursor < r.RSeq:
			sub.Deliver(protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, f.Seq, r.RSeq, string(m.reasoning[cursor:])))
		}
	}
	m.h.opts.Metrics.DeltaSent(len(m.conv.subs))
}

// catchUpReasoningLocked sends sub the mirrored reasoning after rfrom; conv.mu is held.
func (m *mirror) catchUpReasoningLocked(sub Subscriber, rfrom int64) {
	if int(rfrom) < len(m.reasoning) {
		sub.Deliver(protocol.Reasoning(m.ref.ConversationID, m.ref.MessageID, int64(len(m.text)),
			int64(len(m.reasoning)), string(m.reasoning[rfrom:])))
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
