package protocol

import "sync/atomic"

// Frames builds the delta frames of one answer (DeltaAt) and takes each
// back once every reader of it has let go of it (Frame.Release), to build
// a later delta in it instead of allocating a frame per delta. A frame
// some reader never releases (a connection closed with it queued) is
// never built again: the garbage collector takes it, as any frame. Its
// owner calls DeltaAt under its own lock; Release may be called from any
// goroutine.
type Frames struct {
	spare atomic.Pointer[recycled] // a frame every reader released, or nil
}

// recycled is a frame of a Frames.
type recycled struct {
	Frame
	readers atomic.Int32 // holders that have not released the frame yet
	home    *Frames
}

// minRecycled is the least capacity of a recycled frame's Data: a
// coalesced delta of a few tokens fits, so that the first delta of an
// answer, one token, does not make the next ones allocate a larger frame.
const minRecycled = 512

// DeltaAt is the function DeltaAt building the frame in one of fs's: the
// frame every reader released last, if its Data can hold this one, else a
// new one. readers is how many holders will each call Release once, after
// their last read of the frame (its Data included): with the last release
// the frame goes back to fs. A caller that delivers the frame to n readers
// passes n+1 and releases its own hold once it has delivered it, so that
// a reader done before the others are handed it cannot give it back early.
func (fs *Frames) DeltaAt(conversationID, messageID string, seq, rseq int64, text []byte, readers int) *Frame {
	f := Frame{Type: TypeDelta, ConversationID: conversationID, MessageID: messageID, Seq: seq, RSeq: rseq}
	need := textNeed(&f, "seq", text)
	r := fs.spare.Swap(nil)
	if r == nil || cap(r.Data) < need {
		r = &recycled{home: fs}
		r.Data = make([]byte, 0, max(need, minRecycled))
	}
	f.Data = appendTextFrame(r.Data[:0], &f, "seq", seq, text)
	f.rec = r
	r.Frame = f
	r.readers.Store(int32(readers))
	return &r.Frame
}

// Release says the caller no longer reads f. A frame of Frames.DeltaAt
// goes back to its Frames once each of its readers has released it; a
// holder releases a frame at most once, after its last read of it. For
// any other frame, and for a copy of a frame, it does nothing.
func (f *Frame) Release() {
	r := f.rec
	if r == nil || &r.Frame != f {
		return
	}
	if r.readers.Add(-1) == 0 {
		r.home.spare.Store(r)
	}
}
