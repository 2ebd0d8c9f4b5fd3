package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"chatd/transport/api"
)

// TestTitleFormatCharacters: a title holding a character that would make
// it display as other text (a bidirectional control, an invisible format
// character, a line separator) is refused with 400 invalid_field naming
// the title and the character's code point, on creation and on rename
// alike, and nothing is stored; the format characters real text needs
// (joiners in Persian words and emoji sequences, the Arabic number sign,
// the tags of a subdivision flag) are kept.
func TestTitleFormatCharacters(t *testing.T) {
	t.Parallel()
	const (
		woman, laptop = "\U0001F469", "\U0001F4BB"
		england       = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	)
	cases := []struct {
		name, title string
		bad         string // the code point named, "" when allowed
	}{
		{"right-to-left override", "invoice\u202Etxt.exe", "U+202E"},
		{"left-to-right embedding", "a\u202Ab", "U+202A"},
		{"first strong isolate", "a\u2068b\u2069", "U+2068"},
		{"pop directional isolate", "ab\u2069", "U+2069"},
		{"right-to-left mark", "a\u200Fb", "U+200F"},
		{"arabic letter mark", "a\u061Cb", "U+061C"},
		{"zero-width space", "pay\u200Bpal", "U+200B"},
		{"word joiner", "a\u2060b", "U+2060"},
		{"byte order mark", "\uFEFFtitle", "U+FEFF"},
		{"soft hyphen", "hyphen\u00ADated", "U+00AD"},
		{"interlinear annotation", "a\uFFF9hidden\uFFFBb", "U+FFF9"},
		{"tag characters outside a flag", "a\U000E0041\U000E0042", "U+E0041"},
		{"a flag's tags without the cancel tag", "\U0001F3F4\U000E0067\U000E0062", "U+E0067"},
		{"line separator", "one\u2028two", "U+2028"},
		{"zero-width non-joiner in a Persian word", "می\u200Cخواهم", ""},
		{"zero-width joiner in an emoji sequence", woman + "\u200D" + laptop, ""},
		{"zero-width joiner in Devanagari", "क्\u200Dष", ""},
		{"arabic number sign", "\u0600١٢٣", ""},
		{"the flag of England", "Trip " + england, ""},
		{"plain text", "Plans for the week", ""},
	}
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	renamed := e.send(t, http.MethodPost, owner, "/api/conversations", `{"title":"before"}`).conv
	for _, tc := range cases {
		body, _ := json.Marshal(map[string]string{"title": tc.title})
		for _, req := range []struct{ method, path string }{
			{http.MethodPost, "/api/conversations"},
			{http.MethodPatch, "/api/conversations/" + renamed.ID},
		} {
			a := e.send(t, req.method, owner, req.path, string(body))
			if tc.bad == "" {
				if a.status/100 != 2 || a.conv.Title != tc.title {
					t.Fatalf("%s, %s: %d %s %q, title %q, want it kept", tc.name, req.method, a.status, a.code, a.msg, a.conv.Title)
				}
				continue
			}
			if a.status != 400 || a.code != "invalid_field" || !strings.HasPrefix(a.msg, "title: ") || !strings.Contains(a.msg, tc.bad) {
				t.Fatalf("%s, %s: %d %s %q, want 400 invalid_field naming title and %s", tc.name, req.method, a.status, a.code, a.msg, tc.bad)
			}
		}
	}
	for _, c := range e.stored(t, owner) {
		if strings.ContainsAny(c.Title, "\u202E\u200B\u2028") {
			t.Fatalf("a refused title was stored: %q", c.Title)
		}
	}
}
