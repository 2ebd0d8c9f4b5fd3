package hub

// CatchUpBytes is the most bytes of frame data (protocol.Frame.Data) one
// catch-up of an answer hands a subscriber, for an answer whose text and
// reasoning are each maxAnswer bytes (Options.MaxAnswerBytes): a resume
// of it from its start, a tab joining it, the rest of it once ended. A
// transport's queue bound in bytes below it would disconnect, on every
// resume, a client resuming such an answer, which then resumes into the
// same catch-up again.
//
// JSON takes up to escapedBytes bytes for one byte of text, and the
// frames' other members (the ids and cursors of each piece, the ack, the
// message and done frames) take less than catchUpFraming in all.
func CatchUpBytes(maxAnswer int) int64 {
	return 2*escapedBytes*int64(maxAnswer) + catchUpFraming
}

const (
	// escapedBytes is the most bytes JSON writes for one byte of a
	// frame's text: six, for a control character (\u0001), a byte that is
	// not UTF-8 (\ufffd) and <, > and & (\u003c, escaped for HTML).
	escapedBytes = 6
	// catchUpFraming bounds what the frames of a catch-up take beside
	// their text: up to catchUpPieces+1 pieces of text and as many of
	// reasoning, about 120 bytes each with two 24-character ids, and the
	// ack, message and done frames (TestCatchUpBytesBound).
	catchUpFraming = 64 << 10
)
