package api

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"chatd/persistence"
)

// writeParams adds a "- Parameters:" line to a markdown export's header
// list when the conversation sets any.
func writeParams(b *bufio.Writer, p *persistence.Params) {
	if p.IsZero() {
		return
	}
	var parts []string
	if p.Temperature != nil {
		parts = append(parts, "temperature "+strconv.FormatFloat(*p.Temperature, 'g', -1, 64))
	}
	if p.TopP != nil {
		parts = append(parts, "top-p "+strconv.FormatFloat(*p.TopP, 'g', -1, 64))
	}
	if p.MaxTokens != nil {
		parts = append(parts, fmt.Sprintf("max tokens %d", *p.MaxTokens))
	}
	if len(p.Stop) > 0 {
		quoted := make([]string, len(p.Stop))
		for i, s := range p.Stop {
			quoted[i] = strconv.Quote(s) // control characters escaped too
		}
		parts = append(parts, "stop "+strings.Join(quoted, ", "))
	}
	fmt.Fprintf(b, "- Parameters: %s\n", strings.Join(parts, "; "))
}

// mdQuote writes an answer's reasoning, as it arrives in pieces, before
// its text: a quoted block headed "Reasoning", so a reader tells it from
// the answer. A CRLF line end is a newline, as in the answer's text
// (mdBody), also when a piece ends between its two bytes; other control
// characters but tab and newline are escaped, the
// trailing newlines dropped; nothing at all is written for a reasoning
// of newlines only, or none. It writes the blank line that ends the
// message's heading too: before its own heading, or, with no reasoning,
// once the reasoning was read (end), so the export writes something
// between its waits on the store for the reasoning and for the text, for
// sendHeld to send before the second.
type mdQuote struct {
	w       *bufio.Writer
	started bool // the heading is written
	open    bool // a line is written but not yet ended
	newline int  // newlines held back: written only if more text follows
	cr      bool // the last piece ended with a \r, held back: a line end if a \n follows
}

func (q *mdQuote) write(piece string) error {
	if q.cr && piece != "" {
		q.cr = false
		if piece[0] != '\n' {
			q.text("\r") // a carriage return alone: escaped
		}
	}
	for len(piece) > 0 {
		n := strings.IndexByte(piece, '\n')
		if n == 0 {
			q.newline++
			piece = piece[1:]
			continue
		}
		if n < 0 {
			n = len(piece)
		}
		line := piece[:n]
		piece = piece[n:]
		switch {
		case piece != "": // a \n follows: a CRLF is one line end
			line = strings.TrimSuffix(line, "\r")
		case strings.HasSuffix(line, "\r"): // the next piece may start with its \n
			line, q.cr = line[:len(line)-1], true
		}
		if line != "" {
			q.text(line)
		}
	}
	return nil
}

// text writes s, which holds no newline and is not empty, after the
// heading and the newlines held back.
func (q *mdQuote) text(s string) {
	if !q.started {
		q.started = true
		q.w.WriteString("\n> **Reasoning**\n>\n")
	}
	for ; q.newline > 0; q.newline-- {
		if q.open {
			q.w.WriteByte('\n')
			q.open = false
		} else {
			q.w.WriteString(">\n")
		}
	}
	if !q.open {
		q.open = true
		q.w.WriteString("> ")
	}
	writeEscaped(q.w, s)
}

// end finishes the block: its last line, a blank line; with no block,
// the blank line after the message's heading.
func (q *mdQuote) end() {
	if q.cr { // the reasoning ended with a carriage return alone
		q.cr = false
		q.text("\r")
	}
	if !q.started {
		q.w.WriteByte('\n')
		return
	}
	if q.open {
		q.w.WriteByte('\n')
	}
	q.w.WriteByte('\n')
}

// writeEscaped writes s with its control characters escaped (escapeControls).
func writeEscaped(w *bufio.Writer, s string) {
	for len(s) > 0 {
		n := plainPrefix(s)
		w.WriteString(s[:n])
		s = s[n:]
		if s == "" {
			return
		}
		r, size := utf8.DecodeRuneInString(s)
		if p, ok := controlPicture(r); ok {
			w.WriteString(p)
		} else {
			w.WriteString(s[:size])
		}
		s = s[size:]
	}
}
