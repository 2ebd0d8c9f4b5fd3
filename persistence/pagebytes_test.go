package persistence

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTextBytesIsJSONLength: a message counts against a page's budget
// what encoding/json writes of its text and reasoning (less the quotes),
// escapes included.
func TestTextBytesIsJSONLength(t *testing.T) {
	t.Parallel()
	texts := []string{
		"", "plain text", "<script>&amp;</script>", strings.Repeat("<", 1000),
		"quote \" backslash \\ newline \n tab \t cr \r bell \a nul \x00 bs \b ff \f del \x7f",
		"é Привет 中文 😀", "line\u2028para\u2029end", "bad \xff\xfe utf-8 \xe2\x80", "\xe2\x80\xa8",
	}
	for _, text := range texts {
		for _, m := range []Message{{Content: text}, {Reasoning: text}, {Content: text, Reasoning: text + "<"}} {
			want := 0
			for _, s := range []string{m.Content, m.Reasoning} {
				b, err := json.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				want += len(b) - 2
			}
			if got := TextBytes(m); got != want {
				t.Errorf("TextBytes(%q, %q) = %d, want %d", m.Content, m.Reasoning, got, want)
			}
		}
	}
}

// TestPageFill: the newest message is always taken; a message that would
// pass the budget, or one past the limit, ends the page, which then says
// more exist.
func TestPageFill(t *testing.T) {
	t.Parallel()
	msg := func(id string, n int) Message { return Message{ID: id, Content: strings.Repeat("x", n)} }
	newestFirst := []Message{msg("f", 300), msg("e", 300), msg("d", 400), msg("c", 2000), msg("b", 10), msg("a", 10)}
	cases := []struct {
		q        PageQuery
		want     string
		wantMore bool
	}{
		{PageQuery{MaxBytes: 600}, "ef", true},
		{PageQuery{MaxBytes: 1000}, "def", true},
		{PageQuery{MaxBytes: 100}, "f", true},
		{PageQuery{Limit: 2}, "ef", true},
		{PageQuery{}, "abcdef", false},
		{PageQuery{MaxBytes: 3020}, "abcdef", false},
		{PageQuery{MaxBytes: 3019}, "bcdef", true},
	}
	for _, tc := range cases {
		f := NewPageFill(tc.q)
		for _, m := range newestFirst {
			if !f.Take(m) {
				break
			}
		}
		p := f.Page()
		var got strings.Builder
		for _, m := range p.Messages {
			got.WriteString(m.ID)
		}
		if got.String() != tc.want || p.HasMore != tc.wantMore {
			t.Errorf("%+v: %q more %v, want %q more %v", tc.q, got.String(), p.HasMore, tc.want, tc.wantMore)
		}
	}
}
