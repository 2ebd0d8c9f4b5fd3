package httperr

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeJSONRefusesLoneSurrogates: a body holding the \u escape of
// half a UTF-16 surrogate pair without its other half is refused with 400
// naming the field (bad_request when a key holds it), where encoding/json
// would decode it as U+FFFD; a pair, any other escape, and an escaped
// backslash followed by the text "ud800" still decode.
func TestDecodeJSONRefusesLoneSurrogates(t *testing.T) {
	t.Parallel()
	type target struct {
		Name   string `json:"name"`
		Params struct {
			Stop []string `json:"stop"`
		} `json:"params"`
	}
	const lone = "must be valid text: %s is half of a UTF-16 surrogate pair, without its other half"
	cases := []struct {
		name, body string
		code, msg  string // code "" means decoded, to want
		want       string
	}{
		{"a pair", `{"name":"\ud83d\ude00"}`, "", "", "😀"},
		{"a pair in upper case", `{"name":"\uD83D\uDE00!"}`, "", "", "😀!"},
		{"an escaped backslash, then text", `{"name":"\\ud800"}`, "", "", `\ud800`},
		{"escaped backslashes and a quote", `{"name":"\\\\\"ud800\\"}`, "", "", `\\"ud800\`},
		{"other escapes", `{"name":"\u00e9\n\t\"\/\u20ac"}`, "", "", "é\n\t\"/€"},
		{"a high half alone", `{"name":"a\ud800b"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\ud800`), ""},
		{"a high half at the end", `{"name":"a\uDBFF"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\uDBFF`), ""},
		{"a low half alone", `{"name":"\udc00"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\udc00`), ""},
		{"two high halves", `{"name":"\ud83d\ud83d"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\ud83d`), ""},
		{"a high half before another escape", `{"name":"\ud83d\u0041"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\ud83d`), ""},
		{"reversed halves", `{"name":"\ude00\ud83d"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\ude00`), ""},
		{"after an escaped backslash", `{"name":"\\\ud800"}`, CodeInvalidField, "name: " + strings.ReplaceAll(lone, "%s", `\ud800`), ""},
		{"nested in an array", `{"params":{"stop":["ok","\ud800"]}}`, CodeInvalidField, "params.stop: " + strings.ReplaceAll(lone, "%s", `\ud800`), ""},
		{"in a key", `{"na\ud800me":"a"}`, CodeBadRequest, "the body " + strings.ReplaceAll(lone, "%s", `\ud800`), ""},
		{"deep", `{"a":` + strings.Repeat("[", 100) + `"\ud800"` + strings.Repeat("]", 100) + `}`, CodeBadRequest, "the body " + strings.ReplaceAll(lone, "%s", `\ud800`), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			var dst target
			err := DecodeJSON(req, &dst)
			if c.code == "" {
				if err != nil || dst.Name != c.want {
					t.Fatalf("err %v, name %q, want %q", err, dst.Name, c.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != c.code || e.Message != c.msg {
				t.Fatalf("err %v, want 400 %s %q", err, c.code, c.msg)
			}
		})
	}
}
