package hub

import (
	"unicode/utf8"

	"chatd/hub/protocol"
)

// busTextMax bounds the text of one published delta or reasoning frame
// (and of a FrameStored): JSON escapes a byte into at most six, so such a
// frame stays within a bus message (natsbus's limit is 1 MiB) however much
// text an answer's publisher finds waiting, or one piece from the model
// carries (CHATD_MAX_ANSWER_BYTES allows up to 64 MiB).
const busTextMax = 128 << 10

// mergeText folds each run of consecutive delta frames (and each run of
// consecutive reasoning frames) of one answer into one frame carrying
// their text and the last frame's cursors. The publisher calls it on what
// waited in its outbox while the previous frame was being published, so
// a slow bus gets fewer, larger frames instead of a backlog: the frames
// an answer has waiting for the bus are at most one per kind after each
// publish, and remote tabs lag by about one publish, not by a queue.
// Followers check that each delta continues the text (seq = previous seq
// + the text's length), which a merged frame does. A frame whose text
// cannot be read is left as it is (and ends the run). No frame it returns
// carries more than busTextMax bytes of text: a run is merged up to that,
// and a longer frame is split (appendSplit).
func mergeText(fs []*protocol.Frame) []*protocol.Frame {
	if len(fs) == 0 || len(fs) == 1 && len(fs[0].Data) <= busTextMax {
		return fs
	}
	out := fs[:0:0]
	for i := 0; i < len(fs); {
		j := i + 1
		for j < len(fs) && mergeable(fs[i], fs[j]) {
			j++
		}
		if j-i == 1 {
			out = appendSplit(out, fs[i])
			i = j
			continue
		}
		merged, n := mergeRun(fs[i:j])
		out = appendSplit(out, merged)
		i += n
	}
	return out
}

// appendSplit appends f to out as frames of at most busTextMax bytes of
// text each, cut between characters: f itself unless it is a delta or
// reasoning frame carrying more. Each piece's cursor is where its text
// ends, so the pieces continue one another as f's followers expect of its
// text.
func appendSplit(out []*protocol.Frame, f *protocol.Frame) []*protocol.Frame {
	if len(f.Data) <= busTextMax || f.Type != protocol.TypeDelta && f.Type != protocol.TypeReasoning {
		return append(out, f)
	}
	text, err := deltaBytes(f)
	if err != nil || len(text) <= busTextMax {
		return append(out, f)
	}
	seq, rseq := f.Seq, f.RSeq
	if f.Type == protocol.TypeDelta {
		seq -= int64(len(text))
	} else {
		rseq -= int64(len(text))
	}
	for len(text) > 0 {
		cut := min(len(text), busTextMax)
		for cut < len(text) && cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		if cut == 0 { // no character starts in the first busTextMax bytes: not UTF-8
			cut = min(len(text), busTextMax)
		}
		piece := text[:cut]
		text = text[cut:]
		if f.Type == protocol.TypeDelta {
			seq += int64(len(piece))
			out = append(out, protocol.DeltaAt(f.ConversationID, f.MessageID, seq, rseq, piece))
		} else {
			rseq += int64(len(piece))
			out = append(out, protocol.Reasoning(f.ConversationID, f.MessageID, seq, rseq, piece))
		}
	}
	return out
}

// mergeable reports whether b may join a run that starts with a.
func mergeable(a, b *protocol.Frame) bool {
	return (a.Type == protocol.TypeDelta || a.Type == protocol.TypeReasoning) &&
		a.Type == b.Type && a.MessageID == b.MessageID && a.ConversationID == b.ConversationID
}

// mergeRun merges the longest readable prefix of run (all of one type and
// answer) and returns the frame and how many frames it replaces (at least 1).
func mergeRun(run []*protocol.Frame) (*protocol.Frame, int) {
	var text []byte
	n := 0
	for _, f := range run {
		t, err := deltaText(f)
		if err != nil || n > 0 && len(text)+len(t) > busTextMax {
			break
		}
		text = append(text, t...)
		n++
	}
	if n < 2 {
		return run[0], 1
	}
	last := run[n-1]
	if last.Type == protocol.TypeReasoning {
		return protocol.Reasoning(last.ConversationID, last.MessageID, last.Seq, last.RSeq, text), n
	}
	return protocol.DeltaAt(last.ConversationID, last.MessageID, last.Seq, last.RSeq, text), n
}
