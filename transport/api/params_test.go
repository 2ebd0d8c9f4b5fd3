package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"chatd/transport/api"
)

// TestStopSequences: a stop sequence holding a NUL (alone or inside) is
// refused with 400 invalid_field naming params.stop and the sequence, on
// creation and on change, nothing stored; an empty one is refused as
// before, and sequences of whitespace or newlines, the usual stops, are
// kept.
func TestStopSequences(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	u := e.user(t)
	conv := e.send(t, http.MethodPost, u, "/api/conversations", `{}`).conv
	cases := []struct {
		name string
		stop []string
		msg  string // "" when kept
	}{
		{"a NUL", []string{"\x00"}, "params.stop: sequence 1 must not contain NUL (U+0000)"},
		{"a NUL inside the second", []string{"END", "a\x00b"}, "params.stop: sequence 2 must not contain NUL (U+0000)"},
		{"empty", []string{""}, "params.stop: sequence 1 must be 1 to 64 characters of valid UTF-8"},
		{"a newline", []string{"\n"}, ""},
		{"a blank line and a role", []string{"\n\nUser:", " "}, ""},
	}
	for _, tc := range cases {
		body, _ := json.Marshal(map[string]any{"params": map[string]any{"stop": tc.stop}})
		create := e.send(t, http.MethodPost, u, "/api/conversations", string(body))
		change := e.send(t, http.MethodPatch, u, "/api/conversations/"+conv.ID, string(body))
		for _, a := range []createAnswer{create, change} {
			if tc.msg == "" {
				if a.status/100 != 2 || a.conv.Params == nil || strings.Join(a.conv.Params.Stop, "|") != strings.Join(tc.stop, "|") {
					t.Fatalf("%s: %+v, want the sequences kept", tc.name, a)
				}
				continue
			}
			if a.status != http.StatusBadRequest || a.code != "invalid_field" || a.msg != tc.msg {
				t.Fatalf("%s: %+v, want 400 invalid_field %q", tc.name, a, tc.msg)
			}
		}
	}
	for _, c := range e.stored(t, u) {
		for _, s := range c.Params.Stop {
			if strings.ContainsRune(s, 0) {
				t.Fatalf("a stop sequence with a NUL was stored: %q", c.Params.Stop)
			}
		}
	}
}
