package jsonhex

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

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

func TestAppendUnquotedAsEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"plain", `hello, world`},
		{"escapes", `\" \\ \/ \b \f \n \r \t`},
		{"u escapes", `\u0041\u00e9\u00E9\u20ac\u0000`},
		{"surrogate pair", `\ud83d\ude00`},
		{"surrogate pair upper case", `x\uD83D\uDE00y`},
		{"lone high at end", `a\ud83d`},
		{"lone high then text", `\ud83dabcdef`},
		{"lone high then other escape", `\ud83d\u0041`},
		{"lone high then short escape", `\ud83d\n`},
		{"high high low", `\ud83d\ud83d\ude00`},
		{"lone low", `\ude00b`},
		{"low high", `\ude00\ud83d`},
		{"multibyte", `héllo € 😀`},
		{"bad byte", "a\xffb"},
		{"cut rune", "a\xc3"},
		{"encoded surrogate", "\xed\xa0\x80"},
		{"overlong", "\xc0\xaf"},
		{"escaped backslash before u", `\\u0041`},
		{"escaped backslash before u, short", `\\u12`},
		{"escaped backslash at end", `ab\\`},
	}
	for _, tc := range tests {
		var want string
		if err := json.Unmarshal([]byte(`"`+tc.in+`"`), &want); err != nil {
			t.Fatalf("%s: encoding/json refuses %q: %v", tc.name, tc.in, err)
		}
		if got := AppendUnquoted([]byte("prefix:"), []byte(tc.in)); string(got) != "prefix:"+want {
			t.Errorf("%s: AppendUnquoted(%q) = %q, want %q", tc.name, tc.in, got, "prefix:"+want)
		}
	}
}

// TestAppendUnquotedTruncated: on what is not valid JSON (encoding/json
// refuses it) AppendUnquoted does not panic (Go's bounds checks make
// reading past s one), keeps buf and appends valid UTF-8.
func TestAppendUnquotedTruncated(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`\`, `a\`, `\u`, `\u1`, `\u12`, `\u123`, `\ud83d\`, `\ud83d\u`, `\ud83d\ude0`, `\uZZZZ`, `\udZZZ`} {
		if json.Unmarshal([]byte(`"`+in+`"`), new(string)) == nil {
			t.Fatalf("encoding/json accepts %q", in)
		}
		got := AppendUnquoted([]byte("prefix:"), []byte(in))
		if !bytes.HasPrefix(got, []byte("prefix:")) || !utf8.Valid(got) {
			t.Errorf("AppendUnquoted(%q) = %q: want prefix: and valid UTF-8", in, got)
		}
	}
}

func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{`a\u0041`, `\ud83d\ude00`, `\ud83d`, "\xff", `\"\\`, `\u12`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := AppendUnquoted(nil, in)
		var want string
		if json.Unmarshal([]byte(`"`+string(in)+`"`), &want) == nil && string(got) != want {
			t.Errorf("AppendUnquoted(%q) = %q, encoding/json %q", in, got, want)
		}
		if !utf8.Valid(got) {
			t.Errorf("AppendUnquoted(%q) = %q: not valid UTF-8", in, got)
		}
	})
}
