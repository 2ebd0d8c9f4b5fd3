package load

import "strings"

const stampOpen = "[ts:"

// appendStamps appends the values of the "[ts:<ns>] " stamps in text to dst.
// It is llm/fakeai.ParseStamps without a regular expression, since the load
// generator parses every token of every stream.
func appendStamps(dst []int64, text string) []int64 {
	for {
		i := strings.Index(text, stampOpen)
		if i < 0 {
			return dst
		}
		text = text[i+len(stampOpen):]
		var n int64
		j := 0
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			n = n*10 + int64(text[j]-'0')
			j++
		}
		if j > 0 && strings.HasPrefix(text[j:], "] ") {
			dst = append(dst, n)
			text = text[j+2:]
		}
	}
}

// stripStamps removes the "[ts:<ns>] " stamps from text.
func stripStamps(text string) string {
	if !strings.Contains(text, stampOpen) {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	for {
		i := strings.Index(text, stampOpen)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		rest := text[i+len(stampOpen):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 && strings.HasPrefix(rest[j:], "] ") {
			text = rest[j+2:]
			continue
		}
		b.WriteString(stampOpen)
		text = rest
	}
}

// timings is what a connection measured of its tokens, in arrival order:
// each one's upstream stamp and its lateness (arrival minus stamp), in
// nanoseconds.
type timings struct {
	stamps, lateness []int64
}

// add records the stamped tokens of text, which arrived at at.
func (m *timings) add(text string, at int64) {
	n := len(m.stamps)
	m.stamps = appendStamps(m.stamps, text)
	for _, st := range m.stamps[n:] {
		m.lateness = append(m.lateness, at-st)
	}
}

// merge appends the tokens of o.
func (m *timings) merge(o *timings) {
	m.stamps = append(m.stamps, o.stamps...)
	m.lateness = append(m.lateness, o.lateness...)
}
