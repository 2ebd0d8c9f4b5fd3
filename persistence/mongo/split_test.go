package mongo

import (
	"strings"
	"testing"
	"time"
)

func TestAppendText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxSplitRunes+5)
	tests := []struct {
		name, tail, chunk, split, newTail string
	}{
		{"first chunk", "", "Hello wor", "", "wor"},
		{"ends at a space", "", "Hello ", "", ""},
		{"word continues", "wor", "ld and more", "world", "more"},
		{"boundary at a space", "", " world", "", "world"},
		{"next starts with a space", "wor", " ld", "", "ld"},
		{"no space in the chunk", "pho", "tosyn", "photosyn", "photosyn"},
		{"empty chunk", "abc", "", "", "abc"},
		{"newline counts as space", "abc", "def\nghi", "abcdef", "ghi"},
		{"long head is cut", "ab", long + " z", "ab" + strings.Repeat("x", maxSplitRunes), "z"},
		{"long tail keeps its end", "", "a" + long, "", strings.Repeat("x", maxSplitRunes)},
		{"multi-byte characters", "数据", "库存储", "数据库存储", "数据库存储"},
		{"non-breaking space", "a", "b\u00a0c", "ab", "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			split, tail := appendText(tt.tail, tt.chunk)
			if split != tt.split || tail != tt.newTail {
				t.Errorf("appendText(%q, %q) = %q, %q; want %q, %q", tt.tail, tt.chunk, split, tail, tt.split, tt.newTail)
			}
		})
	}
}

func TestLastRunesKeepsCharactersWhole(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("語", maxSplitRunes*2)
	if got := lastRunes(s, maxSplitRunes); got != strings.Repeat("語", maxSplitRunes) {
		t.Errorf("lastRunes = %q", got)
	}
	if got := trailingWord("one two 語語"); got != "語語" {
		t.Errorf("trailingWord = %q", got)
	}
}

// TestOptionDefaults checks the documented defaults (the connect timeout
// is checked as configured, not by waiting 10s for a server that never
// answers; TestOpenTimeoutIsAContextError shows the timeout is applied).
func TestOptionDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		opts        Options
		uri         string
		wantDB      string
		wantTimeout time.Duration
	}{
		{Options{}, "mongodb://h/", DefaultDatabase, 10 * time.Second},
		{Options{}, "mongodb://h/chat", "chat", DefaultConnectTimeout},
		{Options{Database: "x", ConnectTimeout: time.Second}, "mongodb://h/chat", "x", time.Second},
		{Options{ConnectTimeout: -1}, "mongodb://h", DefaultDatabase, DefaultConnectTimeout},
	}
	for _, tc := range cases {
		o := tc.opts.withDefaults(splitURI(tc.uri))
		if o.Database != tc.wantDB || o.ConnectTimeout != tc.wantTimeout || o.Logger == nil {
			t.Errorf("%+v with %s: database %q, timeout %s; want %q, %s", tc.opts, tc.uri, o.Database, o.ConnectTimeout, tc.wantDB, tc.wantTimeout)
		}
	}
}
