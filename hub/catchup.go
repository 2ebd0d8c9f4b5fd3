package hub

import (
	"iter"
	"unicode/utf8"
)

// A catch-up (a tab joining a running answer, a resume, the rest of an
// ended answer) sends the text and the reasoning a tab lacks in pieces of
// at most catchUpPiece bytes, one delta or reasoning frame each, rather
// than in one frame: each frame must be written within the transports'
// write timeout (10 s), so one frame of a whole answer cut a client on a
// slow link on every resume, which then resumed to the same frame again.
// With pieces, each written frame moves the client's cursor on, and a
// client cut anyway resumes further along.
//
// catchUpPiece is 16 KiB: written in under a second at 20 KB/s, and in
// the 10 s at 1.6 KB/s (JSON may escape a piece to a few times its size:
// control characters only). It is about a thousand times a live delta, so
// a catch-up of the default MaxAnswerBytes (256 KiB) is 16 frames.
//
// catchUpPieces bounds the frames of one catch-up stream: past
// catchUpPieces × catchUpPiece (512 KiB, a MaxAnswerBytes raised above
// its default) the pieces grow instead, so that a catch-up of text and
// reasoning stays far below the transports' frame queue (512 frames by
// default; a full queue disconnects the client, which would resume into
// the same catch-up).
const (
	catchUpPiece  = 16 << 10
	catchUpPieces = 32
)

// catchUpBounds yields the bounds [start, end) of the pieces of
// text[from:to] a catch-up sends, in order, contiguous, each of at most
// catchUpPiece bytes (more only past catchUpPieces pieces) and each
// ending at a character start (or at to), so a seq never falls inside a
// character. Bytes that are not UTF-8 are cut where the bound falls.
func catchUpBounds[T string | []byte](text T, from, to int) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		size := max(catchUpPiece, (to-from+catchUpPieces-1)/catchUpPieces)
		for start := from; start < to; {
			end := min(start+size, to)
			if end < to {
				end = charStart(text, start, end)
			}
			if !yield(start, end) {
				return
			}
			start = end
		}
	}
}

// charStart moves end back to the start of the character it falls
// inside, by at most utf8.UTFMax-1 bytes and not to start; end as it is
// when no character starts there.
func charStart[T string | []byte](text T, start, end int) int {
	for e := end; e > start && e > end-utf8.UTFMax; e-- {
		if utf8.RuneStart(text[e]) {
			return e
		}
	}
	return end
}
