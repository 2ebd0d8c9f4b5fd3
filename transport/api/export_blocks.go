package api

import (
	"regexp"
	"slices"
	"strings"
)

// mdBlocks follows, line by line as CommonMark reads them, the blocks of
// a message's text that can outlive it in the Markdown export: a fenced
// code block and an HTML block of types 1-5 (a comment, <script>, <pre>,
// <style>, <textarea>, <?..?>, <!DECL>, CDATA), which only a marker ends,
// not the blank line and the heading the next message starts with. For
// the indentation of a fence it follows list items (a fence in an item is
// indented up to 3 columns past the item's content column, and a line
// indented less, not blank and not a paragraph's lazy continuation, ends
// the item with all it holds). An HTML block of types 6 and 7 (<div>, a
// tag alone on its line) is followed too: a blank line ends it, the one
// after the message at the latest, and nothing opens inside it. A quoted
// line (">") opens nothing: what a block quote holds ends at the first
// line without its ">", at the latest at the blank line after the
// message.
type mdBlocks struct {
	items []int  // content columns of the open list items, outermost first
	para  bool   // the last line was paragraph text (lazy lines, list starts)
	fence string // the open fence's marker (``` or ~~~, or longer); "" outside one
	html  string // the end marker of the open HTML block (htmlBlank: a blank line); "" outside one
	depth int    // how many items hold the open fence or HTML block
	empty bool   // the innermost item has had no content yet (a blank line ends it)
}

// listMax is how many nested list items are followed; deeper ones count
// as the deepest.
const listMax = 32

// closer is what ends the block the text left open, as its own line
// (newline included): the fence or the HTML block's end marker, at the
// content column of the list item that holds it; "" when none is open.
func (s *mdBlocks) closer() string {
	end := s.fence
	if end == "" {
		end = s.html
	}
	if end == "" || end == htmlBlank {
		return "" // the blank line after the message ends an HTML block of types 6-7
	}
	return strings.Repeat(" ", s.base(s.depth)) + end + "\n"
}

// base is the content column of the depth-th list item; 0 outside them.
func (s *mdBlocks) base(depth int) int {
	if depth == 0 {
		return 0
	}
	return s.items[depth-1]
}

// line takes the next line of the text: its start (line), whether it goes
// on past that (long), and the HTML end markers found in all of it (ends).
func (s *mdBlocks) line(line string, long bool, ends *htmlEnds) {
	col, rest := indent(line, 0)
	if s.fence != "" || s.html != "" {
		if rest == "" && s.html != htmlBlank {
			return // a blank line goes on in the block (and in its items)
		}
		if rest == "" {
			s.html, s.para = "", false
			return
		}
		if col >= s.base(s.depth) {
			s.inBlock(col, rest, long, ends)
			return
		}
		s.fence, s.html = "", "" // its list item ends, and the block with it
	}
	if rest == "" {
		if s.empty { // an item may begin with at most one blank line
			s.items, s.empty = s.items[:len(s.items)-1], false
		}
		s.para = false
		return
	}
	s.empty = false
	depth := 0
	for depth < len(s.items) && s.items[depth] <= col {
		depth++
	}
	if depth < len(s.items) && s.para && s.kind(col, depth, rest) == lineText {
		return // a lazy line of the paragraph: its items go on
	}
	s.items = s.items[:depth]
	s.open(col, rest, func(end, html string) bool { return ends.has(end, len(line)-len(html)+2) })
}

// inBlock takes a line inside the open fence or HTML block.
func (s *mdBlocks) inBlock(col int, rest string, long bool, ends *htmlEnds) {
	if s.html != "" {
		if s.html != htmlBlank && ends.has(s.html, 0) {
			s.html = ""
		}
		return
	}
	n := run(rest)
	if col-s.base(s.depth) <= 3 && rest[0] == s.fence[0] && n >= len(s.fence) &&
		strings.TrimRight(rest[n:], " \t") == "" && !long {
		s.fence = ""
	}
}

// open reads a line outside fences and HTML blocks, its list items
// already matched: it may open list items, and in the innermost of them
// a fence or an HTML block, which stays open unless the line holds its
// end marker (ended, given the line from the block's start on: past its
// list markers, "- <?>") past the start marker's first two bytes: "<!-->" is
// a whole comment, "<?>" is not (CommonMark's reference implementations
// take it as one, but marked, the web client's renderer, does not: the
// marker added then shows as text, rather than the rest of the file
// taken into the block).
func (s *mdBlocks) open(col int, rest string, ended func(end, html string) bool) {
	for {
		kind := s.kind(col, len(s.items), rest)
		switch kind {
		case lineFence:
			s.fence, s.depth = rest[:run(rest)], len(s.items)
		case lineHTML:
			if end := htmlEnd(rest); !ended(end, rest) {
				s.html, s.depth = end, len(s.items)
			}
		case lineHTMLBlank:
			s.html, s.depth = htmlBlank, len(s.items)
		case lineItem:
			w, _ := listMarker(rest)
			content := itemContent(col+w, rest[w:])
			pushed := len(s.items) < listMax
			if pushed {
				s.items = append(s.items, content)
			}
			if col, rest = indent(rest[w:], col+w); rest == "" {
				s.para, s.empty = false, pushed
				return
			}
			continue
		case lineText:
			if col-s.base(len(s.items)) >= 4 {
				return // a paragraph's continuation, or indented code: para as it was
			}
		}
		s.para = kind == lineText || kind == lineQuote
		return
	}
}

// The kinds of line start mdBlocks tells apart.
const (
	lineText      = iota // paragraph text (or an indented code line)
	lineOther            // a heading or a thematic break
	lineFence            // a fence's opening line
	lineHTML             // an HTML block of types 1-5
	lineHTMLBlank        // an HTML block of types 6-7, which a blank line ends
	lineItem             // a list item's start
	lineQuote            // a block quote's line
)

// kind is what a line indented to col, rest its text after the indent,
// starts inside depth list items.
func (s *mdBlocks) kind(col, depth int, rest string) int {
	rel := col - s.base(depth)
	switch {
	case rel >= 4:
		return lineText // indented code, or a paragraph's continuation
	case rest[0] == '>':
		return lineQuote
	case thematicBreak(rest):
		return lineOther
	case isFence(rest):
		return lineFence
	case htmlEnd(rest) != "":
		return lineHTML
	case htmlBlockTag(rest) || !s.para && htmlTagLine.MatchString(rest):
		return lineHTMLBlank
	case rest[0] == '#':
		return lineOther
	case s.itemStart(rest):
		return lineItem
	}
	return lineText
}

// itemStart says whether rest starts a list item: a bullet (-, +, *) or
// 1-9 digits and . or ), then a space or nothing. After paragraph text
// only one with content, and an ordered one only at 1, starts one.
func (s *mdBlocks) itemStart(rest string) bool {
	w, number := listMarker(rest)
	if w == 0 {
		return false
	}
	if !s.para {
		return true
	}
	if strings.TrimLeft(rest[w:], " \t") == "" {
		return false
	}
	return number < 0 || number == 1
}

// listMarker is the width of rest's list marker (0 for none) and its
// number (-1 for a bullet).
func listMarker(rest string) (w, number int) {
	switch {
	case rest[0] == '-' || rest[0] == '+' || rest[0] == '*':
		w, number = 1, -1
	default:
		for w < len(rest) && w < 9 && rest[w] >= '0' && rest[w] <= '9' {
			number = number*10 + int(rest[w]-'0')
			w++
		}
		if w == 0 || w == len(rest) || (rest[w] != '.' && rest[w] != ')') {
			return 0, 0
		}
		w++
	}
	if w < len(rest) && rest[w] != ' ' && rest[w] != '\t' {
		return 0, 0
	}
	return w, number
}

// itemContent is the content column of a list item whose marker ends at
// col, after the text after its marker.
func itemContent(col int, after string) int {
	start, text := indent(after, col)
	if text == "" || start-col > 4 { // empty, or starting with indented code
		return col + 1
	}
	return start
}

// indent is the column the first character of s that is not a space or
// tab stands at, s starting at column col (tabs stop every 4 columns),
// and s from that character.
func indent(s string, col int) (int, string) {
	i := 0
	for ; i < len(s) && (s[i] == ' ' || s[i] == '\t'); i++ {
		if s[i] == '\t' {
			col += 4 - col%4
		} else {
			col++
		}
	}
	return col, s[i:]
}

// run is the length of the run of s's first byte at its start.
func run(s string) int {
	n := 1
	for n < len(s) && s[n] == s[0] {
		n++
	}
	return n
}

// isFence says whether s (after its indent) opens a fence: three or more
// backticks then no backtick, or three or more tildes.
func isFence(s string) bool {
	n := run(s)
	return (s[0] == '`' || s[0] == '~') && n >= 3 && (s[0] == '~' || !strings.Contains(s[n:], "`"))
}

// thematicBreak says whether s (after its indent) is a thematic break:
// three or more of one of - * _, with only spaces and tabs between.
func thematicBreak(s string) bool {
	if s[0] != '-' && s[0] != '*' && s[0] != '_' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case s[0]:
			n++
		case ' ', '\t':
		default:
			return false
		}
	}
	return n >= 3
}

// htmlEnd is the end marker of the HTML block of types 1-5 that s (after
// its indent) starts, "" when it starts none.
func htmlEnd(s string) string {
	if len(s) < 2 || s[0] != '<' {
		return ""
	}
	lower := strings.ToLower(s[:min(len(s), 11)])
	for _, tag := range []string{"script", "pre", "style", "textarea"} {
		if after, ok := strings.CutPrefix(lower, "<"+tag); ok && (after == "" || after[0] == ' ' || after[0] == '\t' || after[0] == '>') {
			return "</" + tag + ">"
		}
	}
	switch {
	case strings.HasPrefix(s, "<!--"):
		return "-->"
	case strings.HasPrefix(s, "<?"):
		return "?>"
	case strings.HasPrefix(s, "<![CDATA["):
		return "]]>"
	case s[1] == '!' && len(s) > 2 && (s[2]|0x20) >= 'a' && (s[2]|0x20) <= 'z':
		return ">"
	}
	return ""
}

// htmlBlank stands for the end of an HTML block of types 6 and 7 in
// mdBlocks.html: a blank line ends it, and nothing opens inside it.
const htmlBlank = "\n"

// htmlBlockTags are the tag names that open an HTML block of type 6.
var htmlBlockTags = strings.Fields(`address article aside base basefont blockquote body caption center
	col colgroup dd details dialog dir div dl dt fieldset figcaption figure footer form frame frameset
	h1 h2 h3 h4 h5 h6 head header hr html iframe legend li link main menu menuitem nav noframes ol
	optgroup option p param search section summary table tbody td tfoot th thead title tr track ul`)

// htmlBlockTag says whether s (after its indent) opens an HTML block of
// type 6: < or </, a name of htmlBlockTags, then a space, a tab, >, /> or
// nothing.
func htmlBlockTag(s string) bool {
	name, ok := strings.CutPrefix(s, "<")
	if !ok {
		return false
	}
	name = strings.TrimPrefix(name, "/")
	n := 0
	for n < len(name) && n < 16 && (isASCIILetter(name[n]) || '0' <= name[n] && name[n] <= '9') {
		n++
	}
	after := name[n:]
	return slices.Contains(htmlBlockTags, asciiLower(name[:n])) && (after == "" || after[0] == ' ' ||
		after[0] == '\t' || after[0] == '>' || strings.HasPrefix(after, "/>"))
}

// htmlTagLine matches a line (after its indent) that opens an HTML block
// of type 7: a whole open or closing tag, then only spaces and tabs.
var htmlTagLine = regexp.MustCompile(`^(?:<[A-Za-z][A-Za-z0-9-]*` +
	`(?:[ \t]+[A-Za-z_:][A-Za-z0-9_.:-]*(?:[ \t]*=[ \t]*(?:[^ \t"'=<>\x60]+|'[^']*'|"[^"]*"))?)*` +
	`[ \t]*/?>|</[A-Za-z][A-Za-z0-9-]*[ \t]*>)[ \t]*$`)

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// htmlEnds is where the HTML block end markers (htmlMarkers) last begin
// in a line.
type htmlEnds struct {
	at [len(htmlMarkers)]int // where each marker last begins, plus one (0: none)
	n  int                   // the line's length so far
}

// htmlMarkers are the end markers of HTML blocks of types 1-5, lower case.
var htmlMarkers = [...]string{"-->", "?>", ">", "]]>", "</script>", "</pre>", "</style>", "</textarea>"}

// htmlTail is how much of a line's end is kept to find a marker split
// between two pieces of it.
const htmlTail = len("</textarea>") - 1

// scan notes the markers in s, the line's next piece, which follows tail
// (the line's last bytes before it).
func (e *htmlEnds) scan(tail, s string) {
	start := e.n - len(tail)
	e.n += len(s)
	if strings.IndexByte(s, '>') < 0 {
		return
	}
	text := asciiLower(tail + s)
	for i, m := range htmlMarkers {
		if j := strings.LastIndex(text, m); j >= 0 {
			e.at[i] = start + j + 1
		}
	}
}

// has says whether the line holds marker starting at byte from or later.
func (e *htmlEnds) has(marker string, from int) bool {
	for i, m := range htmlMarkers {
		if m == marker {
			return e.at[i] > from
		}
	}
	return false
}

// asciiLower is s with ASCII letters in lower case, its length kept.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
