package sqlite

import (
	"context"
	"database/sql/driver"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"modernc.org/sqlite"

	"chatd/persistence"
)

// List queries: newest activity first, ties by id, one extra row to know
// whether another page follows. The index conversations_owner_updated
// serves the order and the cursor range. Search matches the title with
// chatd_icontains, and message text through the trigram index message_fts
// (search.go, in the search file attached as "search"): the index finds
// the messages whose lower-cased text holds every trigram of the
// lower-cased query (3 characters or more; ftsTrigrams), chatd_icontains
// confirms that each holds the query itself, and answers
// still streaming (not indexed yet; few, found by the messages_streaming
// index) and the owner's messages queued for the index (search_pending,
// through its index on the owner) are checked directly. The index's keys
// put each user's messages in a rowid range of their own (searchKey), and
// the query reads only the owner's range: the owner's hits, not every
// user's (measured in docs/benchmarks.md, data growth). A query shorter
// than a trigram checks every message of the user (listScan).
var (
	listSelect = `SELECT ` + convCols + ` FROM conversations WHERE owner_id = ?1 AND deleting_at IS NULL`
	listCursor = ` AND (updated_at, id) < (?2, ?3)`
	listSearch = ` AND (` + matchTitle + ` OR id IN (
		SELECT m.conversation_id FROM messages m WHERE m.rowid IN (
			SELECT rowid & ` + msgMask + ` FROM search.message_fts WHERE message_fts MATCH ?6
			AND rowid BETWEEN ` + ownerKey + ` AND ` + ownerKey + ` + ` + msgMask + `)
		AND +m.owner_id = ?1 AND ` + matchRow + ` -- the owner's key range only; unary +: by rowid
		UNION ALL
		SELECT m.conversation_id FROM search_pending p CROSS JOIN messages m ON m.rowid = p.msg
		WHERE p.owner = ?1 AND m.owner_id = ?1 AND ` + matchRow + ` -- the owner's entries queued for the index: CROSS JOIN reads the queue first
		UNION ALL
		SELECT m.conversation_id FROM messages m WHERE m.status = 'streaming' AND m.owner_id = ?1 AND ` + matchStreaming + `))`
	// ownerKey is the first search key of the owner's messages (search.go).
	ownerKey = `(coalesce((SELECT rowid FROM users WHERE id = ?1), 0) << 40)`
	msgMask  = `1099511627775` // 1<<40 - 1
	listScan = ` AND (` + matchTitle + ` OR EXISTS (
		SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id AND ` + matchContent + `))`
	// The driver crashes on an empty BLOB argument, and an empty text never
	// contains a (non-empty) needle: CASE guarantees the call is skipped.
	matchTitle = `CASE WHEN title = '' THEN 0 ELSE chatd_icontains(CAST(title AS BLOB), ?4) END`
	// A streaming answer's text includes its chunks (chunks.go); the
	// index and its queue hold only finished messages, whose row is their
	// text (the queue's triggers fire when a message ends: no chunks left).
	matchRow       = matchText(`m.content`)
	matchStreaming = matchText(`m.content || ` + chunkText("content", "m.rowid"))
	matchContent   = `CASE WHEN m.status = 'streaming' THEN ` + matchStreaming + ` ELSE ` + matchRow + ` END`
	listOrder      = ` ORDER BY updated_at DESC, id DESC LIMIT ?5`
)

// matchText is SQL for: the SQL text expression x holds needle ?4.
func matchText(x string) string {
	return `CASE WHEN ` + x + ` = '' THEN 0 ELSE chatd_icontains(CAST(` + x + ` AS BLOB), ?4) END`
}

var (
	qList             = readQ(listSelect + listOrder)
	qListCursor       = readQ(listSelect + listCursor + listOrder)
	qListSearch       = searchQ(listSelect + listSearch + listOrder)
	qListCursorSearch = searchQ(listSelect + listCursor + listSearch + listOrder)
	qListScan         = searchQ(listSelect + listScan + listOrder)
	qListCursorScan   = searchQ(listSelect + listCursor + listScan + listOrder)
)

// minIndexedRunes is the shortest query the trigram index can answer.
const minIndexedRunes = 3

// Limits of ListQuery.Limit.
const (
	defaultLimit = 30
	maxLimit     = 100
)

// ListConversations returns a page of the owner's conversations, newest
// first, optionally only those whose title or any message contains
// q.Search, compared case-insensitively (both sides folded: fold).
func (s *Store) ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	page, err := s.list(ctx, ownerID, q)
	if err != nil {
		return persistence.ConversationPage{}, fmt.Errorf("sqlite: list conversations: %w", s.readErr(err))
	}
	return page, nil
}

// list runs the page query; Conversations is never nil. A search runs on
// the searches' own connections (Options.SearchConns). A search through
// the index that fails on damaged pages is answered by a scan, which reads
// chatd.db alone: when it succeeds, the search file is the damaged one,
// and the indexer rebuilds it (searchdamage.go). So is one that a rebuild
// of the index began under.
func (s *Store) list(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	limit := clampLimit(q.Limit)
	var cur cursor
	if q.Cursor != "" {
		var err error
		if cur, err = decodeCursor(q.Cursor); err != nil {
			return persistence.ConversationPage{Conversations: []persistence.Conversation{}}, err
		}
	}
	needle := fold(q.Search)
	kind := searchKind(needle)
	gen := s.ixRebuilds.Load() // before the flags: a rebuild begun since then is seen after the query
	// ixDamaged first: a rebuild sets requeueing before it clears ixDamaged.
	if kind == indexSearch && (s.ixDamaged.Load() || s.requeueing.Load()) {
		kind = scanSearch // the index is damaged, or new: not every message is queued for it yet
	}
	var fts string
	if kind == indexSearch {
		if fts = ftsTrigrams(needle); fts == "" {
			kind = scanSearch // every trigram holds a NUL
		}
	}
	args := []any{ownerID, cur.updatedAt, cur.id, needle, limit + 1}
	if kind != indexSearch {
		return s.listPage(ctx, kind, pickListQuery(q.Cursor != "", kind), args, limit)
	}
	page, err := s.listPage(ctx, kind, pickListQuery(q.Cursor != "", kind), append(args, fts), limit)
	if err == nil && s.ixRebuilds.Load() == gen {
		return page, nil
	}
	if err != nil && !damaged(err) {
		return page, err
	}
	// Damaged pages, or a rebuild emptied the index since the flags were
	// read (the search may have read it empty): a scan answers.
	page, scanErr := s.listPage(ctx, scanSearch, pickListQuery(q.Cursor != "", scanSearch), args, limit)
	if scanErr != nil {
		return page, scanErr
	}
	if err != nil {
		s.searchDamaged(gen, err)
	}
	return page, nil
}

// listPage runs the list statement query, which searches as kind says,
// with args, and returns its page of at most limit conversations (the
// statement reads one more, to know whether another page follows);
// Conversations is never nil.
func (s *Store) listPage(ctx context.Context, kind int, query string, args []any, limit int) (persistence.ConversationPage, error) {
	page := persistence.ConversationPage{Conversations: []persistence.Conversation{}}
	run := s.query
	if kind != noSearch {
		run = s.querySearch
	}
	if kind == scanSearch {
		done, err := s.scanTurn(ctx)
		if err != nil {
			return page, err
		}
		defer done()
	}
	rows, err := run(ctx, query, args...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanConv(rows)
		if err != nil {
			return page, err
		}
		page.Conversations = append(page.Conversations, c)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	if len(page.Conversations) > limit {
		page.Conversations = page.Conversations[:limit]
		last := page.Conversations[limit-1]
		page.NextCursor, err = encodeCursor(cursor{updatedAt: last.UpdatedAt.UnixNano(), id: last.ID})
	}
	return page, err
}

// scanTurn waits for one of the scans' slots (Options.SearchConns),
// bounded by ctx, and returns the function that gives it back. A scan
// reads every message of its user (seconds for a thousand long texts): a
// few users sending short queries would otherwise hold every search
// connection, and every other user's search, through the index in
// milliseconds, would wait behind them.
func (s *Store) scanTurn(ctx context.Context) (done func(), err error) {
	select {
	case s.scans <- struct{}{}:
		return func() { <-s.scans }, nil
	default:
	}
	if s.scanWaits != nil {
		s.scanWaits()
	}
	select {
	case s.scans <- struct{}{}:
		return func() { <-s.scans }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for another search reading every message: %w", ctx.Err())
	}
}

// How a list query searches.
const (
	noSearch = iota
	indexSearch
	scanSearch
)

// searchKind picks how to search for the lower-cased needle.
func searchKind(needle string) int {
	switch {
	case needle == "":
		return noSearch
	case utf8.RuneCountInString(needle) < minIndexedRunes:
		return scanSearch
	default:
		return indexSearch
	}
}

// maxFTSTerms bounds the trigrams of a search's FTS5 query: each costs a
// lookup in every segment of the index whether it matches or not (about
// 85 µs in an index of a million messages, 28 segments), and 8 of them
// spread over a longer needle leave few messages for chatd_icontains to
// confirm.
const maxFTSTerms = 8

// ftsTrigrams returns the FTS5 query for the messages whose index holds
// every trigram of needle (3 runes or more), each once, or maxFTSTerms of
// them spread evenly from its first to its last when it has more: each
// quoted as a string, joined by AND. A trigram holding a NUL is left out
// (FTS5's query syntax ends a string at a NUL: "unterminated string"),
// and "" is returned when every one does: the search then checks every
// message of the user, as for a short needle. The index keeps no positions
// (searchSchema), so it cannot match needle as a phrase; it narrows the
// search to the messages that hold the pieces, and chatd_icontains, which
// confirms every hit, leaves out those that hold them apart or lack the
// rest of a longer needle. The overlapping trigrams (those across a
// word's end, such as "e q" of "the quick") are what tells a short phrase
// from its words in any order, so none is skipped below the bound
// (docs/benchmarks.md, "The search index without positions").
//
// Repeated trigrams are told by a set, not by a look through those kept:
// a query can be as long as a request line allows (64 KiB), and a look
// per trigram took 1.9 s of CPU for one search of 60,000 letters.
func ftsTrigrams(needle string) string {
	runes := []rune(needle)
	var all []string
	seen := make(map[string]struct{})
	for i := 0; i+minIndexedRunes <= len(runes); i++ {
		t := string(runes[i : i+minIndexedRunes])
		if strings.ContainsRune(t, 0) {
			continue
		}
		if _, ok := seen[t]; !ok {
			seen[t] = struct{}{}
			all = append(all, t)
		}
	}
	terms := all
	if len(all) > maxFTSTerms {
		terms = make([]string, maxFTSTerms)
		for i := range terms {
			terms[i] = all[i*(len(all)-1)/(maxFTSTerms-1)]
		}
	}
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(`"` + strings.ReplaceAll(t, `"`, `""`) + `"`)
	}
	return b.String()
}

// pickListQuery returns the list statement for the given filters.
func pickListQuery(withCursor bool, search int) string {
	queries := map[int][2]string{
		noSearch:    {qList, qListCursor},
		indexSearch: {qListSearch, qListCursorSearch},
		scanSearch:  {qListScan, qListCursorScan},
	}[search]
	if withCursor {
		return queries[1]
	}
	return queries[0]
}

// clampLimit maps 0 to the default and clamps the rest to 1..maxLimit.
func clampLimit(n int) int {
	switch {
	case n == 0:
		return defaultLimit
	case n < 1:
		return 1
	case n > maxLimit:
		return maxLimit
	default:
		return n
	}
}

// cursor is the position after the last conversation of a page.
type cursor struct {
	updatedAt int64
	id        string
}

// cursorVersion leads every encoded cursor so the format can change.
const cursorVersion = 1

// encodeCursor returns base64url(version, updated_at as 8 bytes, 12-byte id).
func encodeCursor(c cursor) (string, error) {
	id, err := hex.DecodeString(c.id)
	if err != nil || len(id) != 12 {
		return "", fmt.Errorf("stored conversation id %q is not a valid id", c.id)
	}
	b := make([]byte, 0, 21)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.updatedAt))
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor parses what encodeCursor made, or fails with ErrInvalidCursor.
func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 21 || b[0] != cursorVersion {
		return cursor{}, persistence.ErrInvalidCursor
	}
	return cursor{
		updatedAt: int64(binary.BigEndian.Uint64(b[1:9])),
		id:        hex.EncodeToString(b[9:]),
	}, nil
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("chatd_icontains", 2, icontainsFunc)
}

// icontainsFunc is chatd_icontains(text, lowerNeedle): 1 when text,
// folded (fold: NFC, lower-cased), contains lowerNeedle (folded)
// literally (no wildcards of any kind).
// Callers pass text as a BLOB: the driver copies a BLOB argument in one
// move but scans a TEXT argument byte by byte, three times slower.
func icontainsFunc(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	needle, _ := args[1].(string)
	switch text := args[0].(type) {
	case string:
		return icontains(text, needle), nil
	case []byte:
		return icontains(text, needle), nil
	}
	return false, nil
}

// fold is the form search compares texts in: Unicode's composed normal
// form (NFC), then lower-cased rune by rune (strings.ToLower). A text
// stored decomposed (an accent as a letter of its own after its base, as
// macOS file names and some keyboards write it) and one typed composed are
// then the same text; the query, titles and messages (chatd_icontains)
// and the index's text (indexBatch) are all folded so. A text already in
// NFC, nearly every one, is checked without a copy (norm's quick check).
func fold(s string) string {
	return strings.ToLower(norm.NFC.String(s))
}

// icontains reports whether fold(text) contains lowerNeedle (folded),
// without allocating when text is ASCII (which is in NFC). A text of
// characters NFC leaves alone in any text (inertBMP), nearly every one
// of any script, is lower-cased without norm's quick check, which cost
// more than the rest (BenchmarkIcontains: 12 against 6 µs for a French
// kilobyte, 16 against 6 for Chinese).
func icontains[T ~string | ~[]byte](text T, lowerNeedle string) bool {
	if lowerNeedle == "" {
		return true
	}
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			s := string(text)
			if !inertBMP(s[i:]) {
				s = norm.NFC.String(s)
			}
			return strings.Contains(strings.ToLower(s), lowerNeedle)
		}
	}
	n := len(lowerNeedle)
	first := lowerNeedle[0]
	for i := 0; i+n <= len(text); i++ {
		if lowerASCII(text[i]) != first {
			continue
		}
		j := 1
		for j < n && lowerASCII(text[i+j]) == lowerNeedle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// lowerASCII lower-cases an ASCII letter.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// inertBMP reports whether every character of s is one that NFC leaves as
// it is whatever surrounds it (inertRunes), so that s is in NFC: a check
// of one bit per character, where norm's quick check (norm.NFC.String)
// looks each up in its tables, which cost more than the search itself
// on a text with no accent to compose. A character past the BMP is not
// looked up: the answer is then false, and the caller normalises.
func inertBMP(s string) bool {
	inert := inertRunes()
	for _, r := range s {
		if r > 0xFFFF || inert[r>>6]&(1<<(r&63)) == 0 {
			return false
		}
	}
	return true
}

// inertRunes is the set of BMP characters NFC leaves as they are in any
// text, one bit each: those in NFC alone that start a segment and compose
// with no character before them (norm's BoundaryBefore). A text of such
// characters is in NFC: each is a segment of its own, in NFC.
var inertRunes = sync.OnceValue(func() *[1 << 10]uint64 {
	var set [1 << 10]uint64
	for r := rune(0); r <= 0xFFFF; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		if norm.NFC.IsNormalString(s) && norm.NFC.PropertiesString(s).BoundaryBefore() {
			set[r>>6] |= 1 << (r & 63)
		}
	}
	return &set
})
