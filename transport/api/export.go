package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
)

// ExportFormat is the "format" field of a JSON export.
const ExportFormat = "chatd.conversation.v1"

// jsonExport is the document GET .../export?format=json downloads (its
// messages are written one by one, see writeJSON).
type jsonExport struct {
	Format       string                   `json:"format"`
	ExportedAt   time.Time                `json:"exportedAt"`
	Conversation persistence.Conversation `json:"conversation"`
	Messages     []persistence.Message    `json:"messages"`
}

// export streams a download of the conversation. The messages' outline
// (everything but their text and reasoning) is read first; each text and
// reasoning is then read and written in pieces, so an export holds at most
// one piece of text (persistence.ContentPieceBytes) at a time, however
// large the conversation. Until the first bytes are sent, the waits on
// the store share the request's one deadline (the request timeout from
// its start, the token check's included); after, each is bounded by the
// request timeout on its own (storeWatch). What the export holds is sent
// before a wait on a text once nothing was sent for a second since the
// export began or last sent (sendHeld): its first bytes then go out
// before its first read of a text past a second into it, not only once
// its 32 KiB buffer fills, so a healthy store slow per read (many short texts, each read a few
// tens of ms) does not run the deadline out before them, and a proxy
// waits at most about one wait for bytes; the writes are bounded by the
// response's write timeout. An error before the first bytes reach the
// client (the conversation, the outline, the texts read in that first
// second) is an ordinary JSON error; after, it aborts the download (and
// is logged).
func (h *Conversations) export(c *gin.Context) {
	format := c.DefaultQuery("format", "markdown")
	if format != "markdown" && format != "json" {
		httperr.AbortError(c, httperr.InvalidField("format", "must be markdown or json"))
		return
	}
	id, ok := conversationID(c)
	if !ok {
		return
	}
	start := time.Now()
	watch := newStoreWatch(c.Request.Context(), h.timeout, c.Writer.Written)
	defer watch.stop()
	ctx, owner := watch.ctx, ownerID(c)
	watch.waiting()
	// One read of both (persistence.ReadOutline: two round trips on
	// MongoDB, where Conversation then MessageOutline took three).
	conv, msgs, err := persistence.ReadOutline(ctx, h.store, owner, id)
	watch.writing()
	if err != nil {
		httperr.AbortError(c, storeError(watch.err(err), "load conversation "+id+" and its messages"))
		return
	}
	ctype, ext := "text/markdown; charset=utf-8", "md"
	if format == "json" {
		ctype, ext = "application/json; charset=utf-8", "json"
	}
	c.Header("Content-Type", ctype)
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, exportFilename(conv, ext)))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	out := &sentWriter{w: c.Writer, at: start}
	w := bufio.NewWriterSize(out, 32<<10)
	watched := func(read storeRead) pieceReader {
		return func(m *persistence.Message, fn func(string) error) error {
			if err := h.sendHeld(c, w, out); err != nil {
				return err
			}
			watch.waiting()
			defer watch.writing()
			return read(ctx, owner, m.ID, func(piece string) error {
				watch.writing()
				defer watch.waiting()
				return fn(piece)
			})
		}
	}
	text := textReader{content: watched(h.store.ReadContent), reasoning: watched(h.store.ReadReasoning)}
	now := time.Now().UTC()
	if format == "json" {
		err = writeJSON(w, conv, msgs, now, text)
	} else {
		err = writeMarkdown(w, conv, msgs, now, text)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		h.exportFailed(c, id, watch.err(err))
	}
}

// exportSendEvery is how long an export holds what it wrote (up to its
// 32 KiB buffer) before a wait on the store: past it, it sends it first
// (sendHeld). A proxy in front cuts a response it got nothing of for its
// read timeout (nginx's proxy_read_timeout, the request timeout + 5 s),
// and each wait after the first bytes is bounded by the request timeout
// only on its own: without it, a few slow reads of short texts in a row,
// each within its bound, left the proxy nothing for longer than that.
// Before the first bytes it is also how long the export keeps the right
// to answer a JSON error (the headers not sent yet) while its reads share
// the request's deadline: a second, so a store that fails at once still
// gets its 503, yet many short texts on a store slow per read (two reads
// a message) start the download instead of running the deadline out
// before 32 KiB were written.
const exportSendEvery = time.Second

// sendHeld sends what w holds to the client, before a wait on the store,
// once nothing was sent for h.sendEvery (out.at: the export's start until
// its first bytes). The first time, that commits the 200 and the headers,
// and the waits after are each bounded on their own (storeWatch): a
// failure then aborts the download instead of answering a JSON error, as
// any failure after the first bytes does. The proxy waits at most one
// wait on the store (and that second) for more.
func (h *Conversations) sendHeld(c *gin.Context, w *bufio.Writer, out *sentWriter) error {
	if w.Buffered() == 0 || time.Since(out.at) < h.sendEvery {
		return nil
	}
	if err := w.Flush(); err != nil {
		return err
	}
	c.Writer.Flush()
	return nil
}

// sentWriter is an export's response, noting when it last wrote to it
// (at: the export's start until it first does).
type sentWriter struct {
	w  gin.ResponseWriter
	at time.Time
}

func (s *sentWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.at = time.Now()
	return n, err
}

// exportFailed ends an export that failed. Before any byte reached the
// client (what was written still waits in the export's buffer) it answers
// an ordinary JSON error instead of the download. After, it aborts the
// response: the chunked body then lacks its end, so the client's download
// fails rather than saving a truncated file as a whole one.
func (h *Conversations) exportFailed(c *gin.Context, id string, err error) {
	if c.Request.Context().Err() == nil {
		h.logger.Warn("export cut short", "conversation", id, "err", err)
	}
	if !c.Writer.Written() {
		c.Writer.Header().Del("Content-Disposition")
		httperr.AbortError(c, storeError(err, "export conversation "+id))
		return
	}
	_ = c.Error(fmt.Errorf("export conversation %s cut short: %w", id, err))
	panic(http.ErrAbortHandler)
}

// storeRead is a store's read of one text of a message, in pieces
// (ReadContent, ReadReasoning).
type storeRead func(ctx context.Context, ownerID, id string, fn func(piece string) error) error

// pieceReader hands one text of a message to fn in pieces.
type pieceReader func(m *persistence.Message, fn func(piece string) error) error

// textReader reads the texts the outline left out: a message's content
// and its reasoning.
type textReader struct {
	content, reasoning pieceReader
}

// writeJSON writes the jsonExport document, each message's text streamed
// into its "content" field.
func writeJSON(w *bufio.Writer, conv persistence.Conversation, msgs []persistence.Message, now time.Time, text textReader) error {
	head, err := json.Marshal(jsonExport{Format: ExportFormat, ExportedAt: now, Conversation: conv, Messages: []persistence.Message{}})
	if err != nil {
		return err
	}
	w.Write(bytes.TrimSuffix(head, []byte("[]}"))) // ..."messages":
	w.WriteString("[")
	for i := range msgs {
		if i > 0 {
			w.WriteString(",")
		}
		if err := writeJSONMessage(w, &msgs[i], text); err != nil {
			return err
		}
	}
	_, err = w.WriteString("]}\n")
	return err
}

// contentField is how an empty content field is encoded; the reasoning
// field, left out when empty, follows it.
const contentField = `"content":""`

// writeJSONMessage encodes m (whose Content and Reasoning are empty) and
// writes its text into the content field piece by piece, then its
// reasoning, when it has any, into a reasoning field after it: the bytes
// json.Marshal gives for the whole message.
func writeJSONMessage(w *bufio.Writer, m *persistence.Message, text textReader) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	at := bytes.Index(b, []byte(contentField)) + len(contentField) - 1 // at the closing quote
	w.Write(b[:at])
	if err := text.content(m, jsonString(w)); err != nil {
		return err
	}
	w.WriteByte('"')
	started := false
	err = text.reasoning(m, func(piece string) error {
		if piece == "" {
			return nil
		}
		if !started {
			started = true
			w.WriteString(`,"reasoning":"`)
		}
		return jsonString(w)(piece)
	})
	if err != nil {
		return err
	}
	if started {
		w.WriteByte('"')
	}
	_, err = w.Write(b[at+1:])
	return err
}

// jsonString returns a writer of pieces of a JSON string's contents:
// each piece escaped as json.Marshal escapes it, without the quotes.
func jsonString(w *bufio.Writer) func(piece string) error {
	return func(piece string) error {
		q, err := json.Marshal(piece)
		if err != nil {
			return err
		}
		_, err = w.Write(q[1 : len(q)-1])
		return err
	}
}

// exportFilename is "chatd-<title slug>-<id>.<ext>": ASCII letters, digits
// and dashes only, so no header or path trick can ride in on a title.
func exportFilename(conv persistence.Conversation, ext string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(conv.Title) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		default:
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	slug := b.String()
	if slug == "" {
		slug = "conversation"
	}
	return fmt.Sprintf("chatd-%s-%s.%s", slug, conv.ID, ext)
}

// writeMarkdown renders a conversation for reading. The main thread comes
// first: what the app shows by default, the path to the conversation's
// newest message (messageTree.shownChild at each step). Every other
// version (an earlier or later answer from regenerating, an edited
// question) follows in its own section, "Another version of message N",
// continued as the app continues it when that version is picked: towards
// the newest message under it. Messages are numbered in print order; each
// appears exactly once.
func writeMarkdown(w *bufio.Writer, conv persistence.Conversation, msgs []persistence.Message, now time.Time, text textReader) error {
	writeHeader(w, conv, len(msgs), now)
	tree := newMessageTree(msgs)
	type branch struct {
		start     *persistence.Message
		versionOf int // number of the message this branch is another version of; 0 for the main thread
	}
	roots := tree.children[""]
	if len(roots) == 0 {
		_, err := w.WriteString("_No messages._\n")
		return err
	}
	queue := []branch{{start: tree.shownChild("")}}
	queued := map[string]bool{queue[0].start.ID: true}
	n := 0
	for len(queue) > 0 {
		br := queue[0]
		queue = queue[1:]
		if br.versionOf > 0 {
			fmt.Fprintf(w, "## Another version of message %d\n\n", br.versionOf)
		}
		for m := br.start; m != nil; m = tree.shownChild(m.ID) {
			n++
			if err := writeMessage(w, n, m, tree.versionLabel(m), text); err != nil {
				return err
			}
			queued[m.ID] = true // printed: not another version of itself
			for _, s := range tree.siblings(m) {
				if !queued[s.ID] {
					queued[s.ID] = true
					queue = append(queue, branch{start: s, versionOf: n})
				}
			}
		}
	}
	return nil
}

func writeHeader(w *bufio.Writer, conv persistence.Conversation, count int, now time.Time) {
	title := conv.Title
	if title == "" {
		title = "Untitled conversation"
	}
	model := conv.Model
	if model == "" {
		model = "default"
	}
	fmt.Fprintf(w, "# %s\n\n", escapeControls(title))
	fmt.Fprintf(w, "- Model: %s\n- Created: %s\n- Last activity: %s\n- Exported: %s\n- Messages: %d\n",
		escapeControls(model), stamp(conv.CreatedAt), stamp(conv.UpdatedAt), stamp(now), count)
	writeParams(w, conv.Params)
	w.WriteString("\n")
	if conv.SystemPrompt != "" {
		w.WriteString("## System prompt\n\n")
		for _, line := range strings.Split(conv.SystemPrompt, "\n") {
			line = strings.TrimSuffix(line, "\r") // a CRLF is one line end, as in the messages
			fmt.Fprintf(w, "> %s\n", escapeControls(line))
		}
		w.WriteString("\n")
	}
	w.WriteString("## Conversation\n\n")
}

func writeMessage(w *bufio.Writer, n int, m *persistence.Message, version string, text textReader) error {
	who := "User"
	if m.Role == persistence.RoleAssistant {
		who = "Assistant"
		if m.Model != "" {
			who += " (" + escapeControls(m.Model) + ")"
		}
	}
	fmt.Fprintf(w, "### %d. %s%s\n", n, who, version) // its blank line: the quote's (mdQuote)
	quote := &mdQuote{w: w}
	if err := text.reasoning(m, quote.write); err != nil {
		return err
	}
	quote.end()
	body := &mdBody{w: w}
	if err := text.content(m, body.write); err != nil {
		return err
	}
	body.end()
	if note := statusNote(m, body.shown); note != "" {
		fmt.Fprintf(w, "_%s_\n\n", escapeControls(note))
	}
	return nil
}

// crPicture is how the Markdown export shows a carriage return that ends
// no line (controlPicture).
const crPicture = "\u240d"

// mdBody writes a message's text as it arrives in pieces: a CRLF line end
// as a newline (also when a piece ends between its two bytes), other control
// characters escaped, trailing newlines dropped, and a code fence the text
// leaves open closed, and an HTML block that only a marker ends (a
// comment, <script>...: mdBlocks) ended, so a cut-off answer cannot
// swallow the rest of the file.
type mdBody struct {
	w       *bufio.Writer
	started bool
	newline int      // newlines held back: written only if more text follows
	line    []byte   // the current line's start (enough to spot a fence)
	long    bool     // the current line goes on past line
	ends    htmlEnds // the HTML end markers in the current line so far
	tail    []byte   // the current line's last bytes, to find a marker split between pieces
	blocks  mdBlocks // the blocks open after the lines so far
	cr      bool     // the last piece ended with a \r, held back: a line end if a \n follows
	shown   bool     // text other than white space was written
}

func (b *mdBody) write(piece string) error {
	if b.cr && piece != "" {
		b.cr = false
		if piece[0] != '\n' {
			b.text(crPicture) // a carriage return alone
		}
	}
	for len(piece) > 0 {
		// Plain text up to the next byte that needs a look goes out at once.
		n := plainPrefix(piece)
		if n > 0 {
			b.text(piece[:n])
			piece = piece[n:]
			continue
		}
		r, size := utf8.DecodeRuneInString(piece)
		switch {
		case r == '\r' && len(piece) > 1 && piece[1] == '\n':
			// a CRLF line end is a newline: the \n follows
		case r == '\r' && len(piece) == 1:
			b.cr = true // the next piece may start with its \n
		case r == '\n':
			b.newline++
			b.endLine()
		default:
			if p, ok := controlPicture(r); ok {
				b.text(p)
			} else {
				b.text(piece[:size])
			}
		}
		piece = piece[size:]
	}
	return nil
}

// plainPrefix is the length of s's prefix without newlines, control
// characters or C1 controls (whose UTF-8 form starts with 0xC2).
func plainPrefix(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == 0xc2 {
			return i
		}
	}
	return len(s)
}

// text writes s, which holds no newline, after the newlines held back.
func (b *mdBody) text(s string) {
	for ; b.newline > 0; b.newline-- {
		b.w.WriteByte('\n')
	}
	b.started = true
	b.shown = b.shown || strings.TrimSpace(s) != ""
	room := maxFenceLine - len(b.line)
	b.line = append(b.line, s[:min(max(room, 0), len(s))]...)
	b.long = b.long || len(s) > room
	b.ends.scan(string(b.tail), s)
	b.tail = append(b.tail, s[max(0, len(s)-htmlTail):]...)
	b.tail = b.tail[max(0, len(b.tail)-htmlTail):]
	b.w.WriteString(s)
}

// maxFenceLine is how much of a line is kept to spot a fence: its
// indent, its list markers, its marker and its info string.
const maxFenceLine = 256

// endLine notes the blocks the line that just ended opened or closed.
func (b *mdBody) endLine() {
	b.blocks.line(string(b.line), b.long, &b.ends)
	b.line, b.long, b.ends, b.tail = b.line[:0], false, htmlEnds{}, b.tail[:0]
}

// end finishes the text: the last line, what ends a block it left open
// (mdBlocks.closer), a blank line.
func (b *mdBody) end() {
	if b.cr { // the text ended with a carriage return alone
		b.cr = false
		b.text(crPicture)
	}
	if !b.started {
		return
	}
	b.endLine()
	b.w.WriteString("\n")
	b.w.WriteString(b.blocks.closer())
	b.w.WriteString("\n")
}

// controlPicture returns the visible form of a control character other
// than tab and newline: its Unicode control picture (U+2400..U+2421) for
// C0 controls (NUL is ␀, BEL ␇, ESC ␛) and DEL, a \u escape for C1 controls.
func controlPicture(r rune) (string, bool) {
	switch {
	case r == '\t' || r == '\n':
		return "", false
	case r < 0x20:
		return string(rune(0x2400 + r)), true
	case r == 0x7f:
		return "\u2421", true
	case r >= 0x80 && r < 0xa0:
		return fmt.Sprintf("\\u%04x", r), true
	}
	return "", false
}

// escapeControls escapes the control characters of a short string.
func escapeControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		if p, ok := controlPicture(r); ok {
			b.WriteString(p)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// keptClause is what the hub's reasons for an interrupted answer say of
// its text (hub: sweptReason, the shutdown's and the takeover's), left
// out of an answer with none.
const keptClause = "; the text so far is kept"

// statusNote is the note under a message that did not end as a complete
// answer would, or whose end its text does not show: stopped, failed or
// interrupted (with the reason stored with it, as the web client shows it:
// frontend/src/lib/failure.ts), still being written, or (as the web client says it:
// frontend/src/lib/finish.ts) cut at the model's output limit or its
// context window (finish reason length covers both) or stopped by the
// provider's content filter; "" for none. hasText says whether the
// message's text, written above it, held more than white space (the web
// client's content.trim()).
func statusNote(m *persistence.Message, hasText bool) string {
	switch m.Status {
	case persistence.StatusCancelled:
		return "Answer stopped by the user."
	case persistence.StatusError:
		return "Answer failed: " + oneLine(m.Error)
	case persistence.StatusInterrupted:
		if m.Error == "" { // stored without its reason
			return "Answer interrupted (the server stopped while it was being written)."
		}
		reason := oneLine(m.Error)
		if !hasText {
			// An answer that ended with no text (a reasoning model still
			// silent) is not told its text so far is kept, as the web
			// client leaves it out (frontend/src/lib/failure.ts).
			reason = strings.Replace(reason, keptClause, "", 1)
		}
		return "Answer interrupted: " + reason
	case persistence.StatusStreaming:
		return "Answer still being written when exported."
	}
	if m.Role != persistence.RoleAssistant {
		return ""
	}
	switch m.FinishReason {
	case "length":
		return "Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help."
	case "content_filter":
		return "Stopped by the provider's content filter."
	}
	return ""
}

func oneLine(s string) string {
	if s == "" {
		return "unknown error"
	}
	return strings.Join(strings.Fields(s), " ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// messageTree indexes messages by parent; children keep store order
// (oldest first: by creation time, then id). A message whose parent is
// missing counts as a root. newest maps each message's id to the newest
// message of its subtree (itself included).
type messageTree struct {
	children map[string][]*persistence.Message
	ids      map[string]bool
	newest   map[string]*persistence.Message
}

func newMessageTree(msgs []persistence.Message) messageTree {
	ids := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		ids[m.ID] = true
	}
	t := messageTree{children: make(map[string][]*persistence.Message), ids: ids}
	for i := range msgs {
		m := &msgs[i]
		t.children[t.parent(m)] = append(t.children[t.parent(m)], m)
	}
	t.newest = newestInSubtrees(t, msgs)
	return t
}

// newestInSubtrees maps each message's id to the newest message (byAge)
// of its subtree. Walking from the newest message to the oldest, each one
// claims its ancestors up to the first one already claimed (by a newer
// message), so each message is claimed once.
func newestInSubtrees(t messageTree, msgs []persistence.Message) map[string]*persistence.Message {
	order := make([]*persistence.Message, len(msgs))
	for i := range msgs {
		order[i] = &msgs[i]
	}
	slices.SortFunc(order, func(a, b *persistence.Message) int { return byAge(b, a) })
	newest := make(map[string]*persistence.Message, len(msgs))
	byID := make(map[string]*persistence.Message, len(msgs))
	for _, m := range order {
		byID[m.ID] = m
	}
	for _, m := range order {
		for at := m; at != nil && newest[at.ID] == nil; at = byID[t.parent(at)] {
			newest[at.ID] = m
		}
	}
	return newest
}

// byAge orders messages by creation time, then id: the store's order of
// messages (the last is where a send without a parent continues) and the
// app's (frontend/src/lib/thread.ts, byAge).
func byAge(a, b *persistence.Message) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// parent is m's parent id, or "" for a root (or an orphan).
func (t messageTree) parent(m *persistence.Message) string {
	if t.ids[m.ParentID] {
		return m.ParentID
	}
	return ""
}

// siblings are the messages sharing m's parent, m included, oldest first.
func (t messageTree) siblings(m *persistence.Message) []*persistence.Message {
	return t.children[t.parent(m)]
}

// shownChild is the version the app shows by default under the message
// id ("": among the roots), or nil for none: the child whose subtree
// holds the newest message (frontend/src/lib/thread.ts, chosenChild).
func (t messageTree) shownChild(id string) *persistence.Message {
	var shown *persistence.Message
	for _, c := range t.children[id] {
		if shown == nil || byAge(t.newest[c.ID], t.newest[shown.ID]) > 0 {
			shown = c
		}
	}
	return shown
}

// versionLabel is " (version i of n)" for a message with siblings.
func (t messageTree) versionLabel(m *persistence.Message) string {
	sib := t.siblings(m)
	if len(sib) < 2 {
		return ""
	}
	for i, s := range sib {
		if s.ID == m.ID {
			return fmt.Sprintf(" (version %d of %d)", i+1, len(sib))
		}
	}
	return ""
}
