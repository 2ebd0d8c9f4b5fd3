package jsonhex

import "testing"

func TestRune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want rune
	}{
		{"0000", 0},
		{"0041", 'A'},
		{"00e9", 'é'},
		{"00E9", 'é'},
		{"d83D", 0xd83d},
		{"FFFFtail", 0xffff},
	}
	for _, tc := range tests {
		if got := Rune([]byte(tc.in)); got != tc.want {
			t.Errorf("Rune(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}
