package batch

import (
	"strings"
	"testing"
)

func TestCheckpointCut(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 20)
	cases := []struct {
		name    string
		text    string
		maxHold int
		want    int
	}{
		{"empty", "", 8, 0},
		{"one partial word", "hello", 8, 0},
		{"ends with space", "hello ", 8, 6},
		{"holds back partial word", "hello wor", 8, 6},
		{"newline is a boundary", "line one\nline", 8, 9},
		{"tab is a boundary", "a\tbc", 8, 2},
		{"last of several spaces", "a b c de", 8, 6},
		{"tail at the limit is held", "a " + strings.Repeat("y", 8), 8, 2},
		{"tail past the limit is written", "a " + strings.Repeat("y", 9), 8, 11},
		{"no space, long", long, 8, 20},
		{"no space, long, incomplete rune held", long + "\xe4\xb8", 8, 20},
		{"incomplete rune after space", "ab \xe4", 8, 3},
		{"ideographic space is a boundary", "你好\u3000世界", 8, 9},
		{"CJK without spaces past limit", "你好世界你好", 8, 18},
		{"CJK within limit held", "你好", 8, 0},
		{"no-break space is a boundary", "a\u00a0b", 8, 3},
		{"4-byte rune split, tail held", "a 😀😀\xf0\x9f\x98", 8, 2},
		{"4-byte rune split, tail written", "a 😀😀\xf0\x9f\x98", 4, 10},
		{"4-byte runes past limit", "😀😀\xf0\x9f", 4, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkpointCut([]byte(tc.text), tc.maxHold); got != tc.want {
				t.Errorf("checkpointCut(%q, %d) = %d, want %d", tc.text, tc.maxHold, got, tc.want)
			}
		})
	}
}

func TestCompleteLen(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"é", 2},
		{"a\xc3", 1},
		{"a\xe4\xb8", 1},
		{"a\xe4\xb8\x96", 4},
		{"a\xf0\x9f\x98", 1},
		{"a\xf0\x9f\x98\x80", 5},
		{"\x80\x80\x80\x80", 4}, // invalid bytes are not a character to wait for
	}
	for _, tc := range cases {
		if got := completeLen([]byte(tc.text)); got != tc.want {
			t.Errorf("completeLen(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}
