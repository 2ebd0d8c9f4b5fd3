package openai

import (
	"bytes"
	"errors"
	"io"
)

// The SSE fixer's reading of the shapes the SSE specification allows that
// go-openai does not read: a byte order mark, bare CR line ends, the data
// lines of one event (see sseFixer).

// bom is the UTF-8 byte order mark.
var bom = []byte("\ufeff")

// normalize prepares the bytes read from f.in[from:] and returns the
// offset from which to look for line ends: it drops a byte order mark
// at the start of the body (waiting for its three bytes when they come
// apart), and makes a bare CR an LF (a CR LF split between two reads
// loses the LF). A CR in JSON text is always escaped: a raw one ends a
// line.
func (f *sseFixer) normalize(from int) int {
	if f.crEnd && from < len(f.in) {
		f.crEnd = false
		if f.in[from] == '\n' {
			f.in = append(f.in[:from], f.in[from+1:]...)
		}
	}
	if !f.begun {
		if len(f.in) < len(bom) && bytes.HasPrefix(bom, f.in) && f.err == nil {
			return len(f.in) // maybe a byte order mark: wait for the rest
		}
		f.begun = true
		f.in, from = bytes.TrimPrefix(f.in, bom), 0
	}
	for b := f.in[from:]; ; {
		i := bytes.IndexByte(b, '\r')
		switch {
		case i < 0:
			return from
		case i+1 == len(b):
			b[i], f.crEnd = '\n', true
			return from
		case b[i+1] != '\n':
			b[i] = '\n'
		}
		b = b[i+1:]
	}
}

// endsObject reports whether l's last character before its line end and
// white space is '}': a chunk's data line, whole (the usual case, decided
// without looking at the rest of the line).
func endsObject(l []byte) bool {
	i := len(l) - 1
	for i >= 0 && isSpace(l[i]) {
		i--
	}
	return i >= 0 && l[i] == '}'
}

// join adds a data line to the event's joined data lines, or holds it as
// the first of them when its JSON object is not closed; it reports
// whether it took l. Another line ends the event: the joined line is
// fixed first, then l.
func (f *sseFixer) join(l []byte) bool {
	rest, isData := bytes.CutPrefix(bytes.TrimLeft(l, " "), dataPrefix)
	switch {
	case isData && f.pend != nil:
		rest = bytes.TrimPrefix(rest, []byte(" ")) // the space after the colon is not data
		f.pend = append(append(f.pend, '\r'), trimEOL(rest)...)
		return true
	case isData && openObject(rest):
		f.pend = append([]byte(nil), trimEOL(l)...)
		return true
	case f.pend != nil:
		p := append(f.pend, '\n')
		f.pend = nil
		f.fix(p)
	}
	return false
}

// openObject reports a data line's payload that starts a JSON object but
// does not end one.
func openObject(payload []byte) bool {
	p := bytes.TrimSpace(payload)
	return len(p) > 0 && p[0] == '{' && p[len(p)-1] != '}'
}

// trimEOL cuts the line end (LF or CR LF) off l.
func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

// flushPend passes on the joined data lines at the end of the body, with
// the last line when it is one of them: as one line when the body ended
// cleanly with whole JSON, else left unterminated, cut (see last).
func (f *sseFixer) flushPend() {
	if f.pend == nil {
		return
	}
	p := f.pend
	f.pend = nil
	if rest, ok := bytes.CutPrefix(bytes.TrimLeft(f.in, " "), dataPrefix); ok {
		p, f.in = append(append(p, '\r'), bytes.TrimPrefix(rest, []byte(" "))...), f.in[:0]
	}
	if errors.Is(f.err, io.EOF) && len(f.in) == 0 && !cutDataLine(p) {
		f.fix(append(p, '\n'))
		return
	}
	f.in = append(p, f.in...)
}
