package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"

	"chatd/persistence"
)

// Reading one text of a message (its content or its reasoning) in pieces
// (ReadContent, ReadReasoning). A finished message's text is its row's
// column, read by byte offset. A streaming answer's is its row's column
// followed by its chunks' (chunks.go): a piece reads the rest of the row's
// part, if any, then the chunks it needs from where the last piece
// stopped (a chunk id and a byte offset in it), so every chunk is read
// about once however many pieces the text takes. (Read by byte offset
// from the row and all its chunks joined, each piece joined every chunk
// again: an export's work grew with the square of a streaming answer.)
//
// The first read takes a snapshot of the text's extent: the row's part,
// the last chunk and the total length; chunks appended later are left for
// the next read. An answer that ends meanwhile folds its chunks into its
// row, in order, and deletes them: the pieces then continue from the
// row's column at the same byte offset.

// textQueries read one text column of a message (see readText).
type textQueries struct {
	// head: the row's part's length, the last chunk's id and the total
	// length (the last two NULL for a finished message); ?1 id, ?2 owner.
	// No row for a message of a conversation being deleted: a read that
	// started before the mark reads on until its rows are gone.
	head string
	// row: ?3 bytes of the row's column from byte ?4 (1-based); ?1 id, ?2 owner.
	row string
	// chunks: the chunks from id ?3 to ?5 in order, each its id and up to
	// ?6 of its bytes (from byte ?4, 1-based, of chunk ?3; from its start
	// for the others); ?1 id, ?2 owner.
	chunks string
}

// textReads registers the reads of the text column col (content or reasoning).
func textReads(col string) textQueries {
	blob := func(t string) string { return `CAST(` + t + `.` + col + ` AS BLOB)` }
	streaming := `m.status = 'streaming'`
	return textQueries{
		head: readQ(`SELECT length(` + blob("m") + `),
			CASE WHEN ` + streaming + ` THEN (SELECT max(c.id) FROM message_chunks c WHERE c.msg = m.rowid) END,
			CASE WHEN ` + streaming + ` THEN length(` + blob("m") + `) +
				(SELECT sum(length(` + blob("c") + `)) FROM message_chunks c WHERE c.msg = m.rowid) END
			FROM messages m WHERE m.id = ?1 AND m.owner_id = ?2 AND ` + msgConvLive("m")),
		row: readQ(`SELECT substr(` + blob("m") + `, ?4, ?3) FROM messages m WHERE m.id = ?1 AND m.owner_id = ?2`),
		chunks: readQ(`SELECT c.id, substr(` + blob("c") + `, CASE WHEN c.id = ?3 THEN ?4 ELSE 1 END, ?6)
			FROM messages m JOIN message_chunks c ON c.msg = m.rowid
			WHERE m.id = ?1 AND m.owner_id = ?2 AND ` + streaming + ` AND c.id >= ?3 AND c.id <= ?5
			ORDER BY c.id`),
	}
}

// readText hands fn the text column q reads, piece by piece. No query is
// open while fn runs.
func (s *Store) readText(ctx context.Context, q textQueries, ownerID, id string, fn func(string) error) error {
	r := textReader{s: s, q: q, owner: ownerID, id: id}
	if err := r.start(ctx); err != nil {
		return err
	}
	for r.done < r.size {
		b, err := r.piece(ctx, persistence.ContentPieceBytes)
		if err != nil {
			return err
		}
		n := wholeRunes(b, r.done+len(b) == r.size)
		if err := fn(string(b[:n])); err != nil {
			return err
		}
		r.advance(n)
	}
	return nil
}

// textReader is where a read of one text stands.
type textReader struct {
	s         *Store
	q         textQueries
	owner, id string
	rowLen    int       // the row's part of the text, in bytes
	last      int64     // the last chunk of the snapshot (0: none)
	size      int       // the text's length, row and chunks
	done      int       // bytes handed over
	chunk     int64     // the chunk the next piece starts in (or one before it)...
	chunkOff  int       // ...and how many of its bytes were handed over
	folded    bool      // the chunks were folded into the row meanwhile
	segs      []textSeg // the chunks the last piece read from, in order
	buf       []byte    // the pieces' buffer, reused
}

// textSeg is the part of a piece one chunk gave: from byte off of it, n bytes.
type textSeg struct {
	id     int64
	off, n int
}

// start reads the text's extent.
func (r *textReader) start(ctx context.Context) error {
	row, err := r.s.queryRow(ctx, r.q.head, r.id, r.owner)
	if err != nil {
		return err
	}
	var last, size sql.NullInt64
	if err := row.Scan(&r.rowLen, &last, &size); err != nil {
		return r.s.readErr(err)
	}
	r.size = r.rowLen
	if last.Valid && size.Valid {
		r.last, r.size = last.Int64, int(size.Int64)
	}
	return nil
}

// piece reads up to max bytes of the text from byte r.done.
func (r *textReader) piece(ctx context.Context, max int) ([]byte, error) {
	max = min(max, r.size-r.done)
	for {
		b := r.buf[:0]
		r.segs = r.segs[:0]
		if r.done < r.rowLen || r.folded {
			end := r.size
			if !r.folded {
				end = r.rowLen
			}
			part, err := r.fromRow(ctx, min(max, end-r.done))
			if err != nil || len(part) == max || r.folded {
				return part, err
			}
			b = append(b, part...)
		}
		b, err := r.fromChunks(ctx, b, max)
		if err != nil {
			return nil, err
		}
		r.buf = b[:0]
		if len(r.segs) > 0 {
			if len(b) < max { // the chunks are the snapshot's: they cannot end early
				return nil, fmt.Errorf("text ends at byte %d of %d: %w", r.done+len(b), r.size, persistence.ErrNotFound)
			}
			return b, nil
		}
		// No chunk is left of the snapshot: the answer ended and its row
		// took them in (or it was deleted: the row's read tells).
		r.folded = true
	}
}

// fromRow reads n bytes of the row's column from byte r.done.
func (r *textReader) fromRow(ctx context.Context, n int) ([]byte, error) {
	row, err := r.s.queryRow(ctx, r.q.row, r.id, r.owner, n, r.done+1)
	if err != nil {
		return nil, err
	}
	var b []byte
	if err := row.Scan(&b); err != nil {
		return nil, r.s.readErr(err)
	}
	if len(b) < n {
		// The text is shorter than its extent read at the start: handing
		// over what is left would pass a cut text for a whole one.
		return nil, fmt.Errorf("text ends at byte %d of %d: %w", r.done+len(b), r.size, persistence.ErrNotFound)
	}
	return b, nil
}

// fromChunks appends to b the chunks' bytes from where the last piece
// stopped, up to max bytes in all, noting each chunk's part in r.segs.
func (r *textReader) fromChunks(ctx context.Context, b []byte, max int) ([]byte, error) {
	if cap(b) < max {
		b = append(make([]byte, 0, max), b...)
	}
	rows, err := r.s.query(ctx, r.q.chunks, r.id, r.owner, r.chunk, r.chunkOff+1, r.last, max-len(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for len(b) < max && rows.Next() {
		var id int64
		var part sql.RawBytes
		if err := rows.Scan(&id, &part); err != nil {
			return nil, err
		}
		off := 0
		if id == r.chunk {
			off = r.chunkOff
		}
		part = part[:min(len(part), max-len(b))]
		b = append(b, part...)
		r.segs = append(r.segs, textSeg{id: id, off: off, n: len(part)})
	}
	return b, r.s.readErr(rows.Err())
}

// advance moves past the first n bytes of the last piece.
func (r *textReader) advance(n int) {
	if r.done < r.rowLen && !r.folded {
		row := min(n, r.rowLen-r.done)
		r.done, n = r.done+row, n-row
	}
	for _, seg := range r.segs {
		if n == 0 {
			break
		}
		took := min(n, seg.n)
		r.chunk, r.chunkOff = seg.id, seg.off+took
		r.done, n = r.done+took, n-took
	}
	r.done += n // read from the folded row
}

// wholeRunes returns how much of b ends on a character boundary: all of it
// at the end of the text, else up to the start of a last, cut character.
func wholeRunes(b []byte, last bool) int {
	if last {
		return len(b)
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) || i == 0 {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
