package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

type reasoningFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversationId"`
	MessageID      string `json:"messageId"`
	RSeq           int64  `json:"rseq"`
	Text           string `json:"text"`
}

// Reasoning carries more of an answer's reasoning ("thinking") text; rseq
// is the reasoning's length in bytes after it, a cursor of its own beside
// the text's seq, which the frame also records (for EventID).
func Reasoning[T string | []byte](conversationID, messageID string, seq, rseq int64, text T) *Frame {
	return textFrame(Frame{Type: TypeReasoning, ConversationID: conversationID, MessageID: messageID, Seq: seq, RSeq: rseq},
		"rseq", rseq, text)
}

// DeltaAt is Delta recording the reasoning cursor rseq as well (for
// EventID); text may be the bytes of the answer's buffer (they are copied).
func DeltaAt[T string | []byte](conversationID, messageID string, seq, rseq int64, text T) *Frame {
	return textFrame(Frame{Type: TypeDelta, ConversationID: conversationID, MessageID: messageID, Seq: seq, RSeq: rseq},
		"seq", seq, text)
}

// EventID is the cursor part of the SSE id of a delta, reasoning or done
// frame: "<seq>", or "<seq>/<rseq>" once the answer has reasoning, so that
// Last-Event-ID resumes both cursors. The id itself (transport/sse) puts
// the answer's message id before it, "<messageId>:<seq>[/<rseq>]", and is
// "<messageId>:done" for a done. Before that form the cursor alone was
// the whole id, and a client may still send one back: ParseEventID reads
// the cursor of either.
func (f *Frame) EventID() string {
	if f.RSeq == 0 {
		return strconv.FormatInt(f.Seq, 10)
	}
	return strconv.FormatInt(f.Seq, 10) + "/" + strconv.FormatInt(f.RSeq, 10)
}

// ParseEventID reads an EventID's cursors back (without a message id):
// the text cursor and, when present, the reasoning cursor (nil otherwise).
func ParseEventID(id string) (seq int64, rseq *int64, err error) {
	a, b, both := strings.Cut(id, "/")
	if seq, err = strconv.ParseInt(a, 10, 64); err != nil || seq < 0 {
		return 0, nil, fmt.Errorf("event id %q: not <seq> or <seq>/<rseq>", id)
	}
	if !both {
		return seq, nil, nil
	}
	r, err := strconv.ParseInt(b, 10, 64)
	if err != nil || r < 0 {
		return 0, nil, fmt.Errorf("event id %q: not <seq> or <seq>/<rseq>", id)
	}
	return seq, &r, nil
}
