package hub

import (
	"chatd/hub/protocol"
)

// mergeText folds each run of consecutive delta frames (and each run of
// consecutive reasoning frames) of one answer into one frame carrying
// their text and the last frame's cursors. The publisher calls it on what
// waited in its outbox while the previous frame was being published, so
// a slow bus gets fewer, larger frames instead of a backlog: the frames
// an answer has waiting for the bus are at most one per kind after each
// publish, and remote tabs lag by about one publish, not by a queue.
// Followers check that each delta continues the text (seq = previous seq
// + the text's length), which a merged frame does. A frame whose text
// cannot be read is left as it is (and ends the run).
func mergeText(fs []*protocol.Frame) []*protocol.Frame {
	if len(fs) < 2 {
		return fs
	}
	out := fs[:0:0]
	for i := 0; i < len(fs); {
		j := i + 1
		for j < len(fs) && mergeable(fs[i], fs[j]) {
			j++
		}
		if j-i == 1 {
			out = append(out, fs[i])
			i = j
			continue
		}
		merged, n := mergeRun(fs[i:j])
		out = append(out, merged)
		i += n
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
		if err != nil {
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
