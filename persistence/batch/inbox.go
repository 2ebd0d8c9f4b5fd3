package batch

// The inbox. Append is called for every token of every streaming answer,
// from the answers' own goroutines: with hundreds of answers streaming
// (a burst of sends), one mutex taken by every Append becomes a queue, and
// on a busy machine a queue that hands the lock from one waiting goroutine
// to the next, each waiting to be scheduled, while the answers' deltas wait
// behind it. So Append only adds the piece to one of inboxStripes small
// lists, chosen by the message id (a message's pieces stay in order in
// one list), and the Writer moves the pieces into their entries under its
// own mutex when it needs them: before a checkpoint or a final update is
// collected, before Finish records a final update, and for Stats.

import "sync"

// inboxStripes is the number of inbox lists (and locks).
const inboxStripes = 32

// keepPieces is the largest emptied list a stripe keeps for reuse.
const keepPieces = 256

// stripe is one inbox list.
type stripe struct {
	mu     sync.Mutex
	pieces []piece // appended, not yet moved to their entries, in order
	spare  []piece // the emptied list of the last drain; drains only
}

// piece is one Append call's text.
type piece struct {
	id, text  string
	reasoning bool
}

// stripeOf picks the list of message id (FNV-1a).
func stripeOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % inboxStripes)
}

// drainLocked moves every piece of the inbox into its entry, in order
// (appendLocked: admission, limits and drops apply then); w.mu is held,
// which also makes drains one at a time.
func (w *Writer) drainLocked() {
	if w.inboxLen.Load() == 0 {
		return
	}
	for i := range w.inbox {
		st := &w.inbox[i]
		st.mu.Lock()
		pieces := st.pieces
		if len(pieces) == 0 {
			st.mu.Unlock()
			continue
		}
		st.pieces = st.spare[:0] // Append fills the other list meanwhile
		w.inboxLen.Add(-1)
		st.mu.Unlock()
		for _, p := range pieces {
			if why := w.appendLocked(p.id, p.text, p.reasoning); why != "" {
				w.log.Error("persisting streamed text: text dropped", "messageId", p.id, "reason", why)
			}
		}
		clear(pieces)
		if cap(pieces) > keepPieces {
			pieces = nil // a burst's list is not kept
		}
		st.spare = pieces[:0]
	}
}
