package httperr

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Write(rec, RateLimited("slow down", 1500*time.Millisecond))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" ||
		rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got := strings.TrimSpace(rec.Body.String()); got != `{"error":{"code":"rate_limited","message":"slow down"}}` {
		t.Fatalf("body %s", got)
	}
}

// TestWriteChallenge: every 401 Write sends, however it was built, carries
// a Bearer challenge (RFC 9110 11.6.1); one for a bad token names
// invalid_token with a description holding only what RFC 6750 allows; a
// 400 invalid_request (RFC 6750 3.1) carries one too; other errors none.
func TestWriteChallenge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{"no token", Unauthorized("missing token"), `Bearer realm="chatd"`},
		{"built by hand", New(http.StatusUnauthorized, CodeUnauthorized, "who are you"), `Bearer realm="chatd"`},
		{"a bad token", InvalidToken("token expired"),
			`Bearer realm="chatd", error="invalid_token", error_description="token expired"`},
		{"quotes and backslashes left out", InvalidToken("a \"bad\\ token\u00e9\n"),
			`Bearer realm="chatd", error="invalid_token", error_description="a bad token"`},
		{"a malformed request (two Authorization headers)", InvalidRequest("send one"),
			`Bearer realm="chatd", error="invalid_request", error_description="send one"`},
		{"not a 401", Forbidden("no"), ""},
		{"a 400 of no token", BadRequest("bad JSON"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tc.err)
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.want {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAbortErrorHidesCauses(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{errors.New("database password is hunter2"), 500, CodeInternal},
		{Unavailable("busy", errors.New("pool hunter2 exhausted")), 503, CodeUnavailable},
		{NotFound("conversation not found"), 404, CodeNotFound},
		{errors.Join(errors.New("wrapped"), Conflict("taken")), 409, CodeConflict},
	} {
		rec := httptest.NewRecorder()
		ctx, _ := gin.CreateTestContext(rec)
		AbortError(ctx, c.err)
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != c.status || body.Error.Code != c.code || strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("%v: %d %s", c.err, rec.Code, rec.Body)
		}
		if !ctx.IsAborted() {
			t.Errorf("%v: chain not aborted", c.err)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type target struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	cases := []struct {
		name, body, ctype string
		limit             int64
		status            int
		code              string
	}{
		{"ok", `{"name":"a","count":2}`, "application/json", 0, 0, ""},
		{"ok with charset", `{"name":"a"}`, "application/json; charset=utf-8", 0, 0, ""},
		{"no content type", `{"name":"a"}`, "", 0, 0, ""},
		{"form content type", `{"name":"a"}`, "application/x-www-form-urlencoded", 0, 400, CodeBadRequest},
		{"empty", ``, "application/json", 0, 400, CodeBadRequest},
		{"syntax", `{"name":`, "application/json", 0, 400, CodeBadRequest},
		{"array", `[1,2]`, "application/json", 0, 400, CodeBadRequest},
		{"null", ` null `, "application/json", 0, 400, CodeBadRequest},
		{"a string", `"a"`, "application/json", 0, 400, CodeBadRequest},
		{"unknown field", `{"nam":"a"}`, "application/json", 0, 400, CodeBadRequest},
		{"wrong type", `{"count":"two"}`, "application/json", 0, 400, CodeInvalidField},
		{"trailing object", `{"name":"a"}{"name":"b"}`, "application/json", 0, 400, CodeBadRequest},
		{"trailing garbage", `{"name":"a"} x`, "application/json", 0, 400, CodeBadRequest},
		{"too large", `{"name":"` + strings.Repeat("a", 100) + `"}`, "application/json", 50, 413, CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.limit > 0 {
				req.Body = http.MaxBytesReader(httptest.NewRecorder(), req.Body, c.limit)
			}
			var dst target
			err := DecodeJSON(req, &dst)
			if c.status == 0 {
				if err != nil || dst.Name != "a" {
					t.Fatalf("err %v, dst %+v", err, dst)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != c.status || e.Code != c.code {
				t.Fatalf("err %v, want %d %s", err, c.status, c.code)
			}
		})
	}
}

// TestDecodeJSONContentEncoding: a body with a content coding (gzip, br,
// anything but identity, on any Content-Encoding line) is refused with
// 415 unsupported_media_type and Accept-Encoding: identity, whatever it
// holds; no Content-Encoding, or identity, is read as it came. Before, a
// gzip body was refused as "not valid UTF-8" and a br one sent plain was
// taken.
func TestDecodeJSONContentEncoding(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"name":"a"}`))
	_ = zw.Close()
	for _, c := range []struct {
		name     string
		body     string
		encoding []string
		refused  bool
	}{
		{"none", `{"name":"a"}`, nil, false},
		{"identity", `{"name":"a"}`, []string{"identity"}, false},
		{"identity in capitals, listed twice", `{"name":"a"}`, []string{"IDENTITY, identity"}, false},
		{"empty", `{"name":"a"}`, []string{""}, false},
		{"gzip body", gz.String(), []string{"gzip"}, true},
		{"br declared, plain JSON sent", `{"name":"a"}`, []string{"br"}, true},
		{"identity then gzip", gz.String(), []string{"identity, gzip"}, true},
		{"gzip on a second line", gz.String(), []string{"identity", "gzip"}, true},
		{"an unknown coding", `{"name":"a"}`, []string{"x-mine"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			for _, v := range c.encoding {
				req.Header.Add("Content-Encoding", v)
			}
			var dst struct {
				Name string `json:"name"`
			}
			err := DecodeJSON(req, &dst)
			if !c.refused {
				if err != nil || dst.Name != "a" {
					t.Fatalf("err %v, dst %+v", err, dst)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusUnsupportedMediaType || e.Code != CodeUnsupportedMedia {
				t.Fatalf("err %v, want 415 %s", err, CodeUnsupportedMedia)
			}
			rec := httptest.NewRecorder()
			Write(rec, e)
			if got := rec.Header().Get("Accept-Encoding"); got != "identity" {
				t.Fatalf("Accept-Encoding %q, want identity", got)
			}
			if dst.Name != "" {
				t.Fatalf("the body was decoded: %+v", dst)
			}
		})
	}
}

// TestDecodeOptionalJSON: an empty body, however it arrives, leaves the
// target as it is; any other body is decoded as DecodeJSON does.
func TestDecodeOptionalJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		chunked    bool
		want       string // the decoded name; "" with status 0: untouched
		status     int
	}{
		{"none", "", false, "kept", 0},
		{"chunked, empty", "", true, "kept", 0},
		{"chunked, an object", `{"name":"a"}`, true, "a", 0},
		{"an object", `{"name":"a"}`, false, "a", 0},
		{"chunked, not JSON", `x`, true, "", 400},
		{"chunked, only spaces", `  `, true, "", 400},
		{"null", `null`, false, "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			if c.chunked {
				req.ContentLength = -1
			}
			dst := struct {
				Name string `json:"name"`
			}{Name: "kept"}
			err := DecodeOptionalJSON(req, &dst)
			var e *Error
			switch {
			case c.status == 0 && (err != nil || dst.Name != c.want):
				t.Fatalf("err %v, name %q, want %q", err, dst.Name, c.want)
			case c.status != 0 && (!errors.As(err, &e) || e.Status != c.status):
				t.Fatalf("err %v, want status %d", err, c.status)
			}
		})
	}
}

// TestDecodeJSONRefusesInvalidUTF8: a body that is not valid UTF-8 is
// refused with 400, naming the field whose string holds the first bad
// byte, rather than decoded with U+FFFD in place of the bad bytes (as a
// WebSocket text frame that is not UTF-8 is refused). Valid text in any
// script, and escapes, still decode.
func TestDecodeJSONRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	type target struct {
		Name   string `json:"name"`
		Params struct {
			Stop []string `json:"stop"`
		} `json:"params"`
		Count int `json:"count"`
	}
	cases := []struct {
		name, body string
		code, msg  string // code "" means decoded
	}{
		{"valid text", `{"name":"héllo 中 😀 \ufffd"}`, "", ""},
		{"bad byte in a value", "{\"name\":\"a\xffb\"}", CodeInvalidField, "name: must be valid UTF-8"},
		{"truncated sequence at the end of a value", "{\"name\":\"a\xe4\xb8\"}", CodeInvalidField, "name: must be valid UTF-8"},
		{"encoded surrogate", "{\"count\":1,\"name\":\"\xed\xa0\x80\"}", CodeInvalidField, "name: must be valid UTF-8"},
		{"nested in an array", "{\"params\":{\"stop\":[\"ok\",\"\xc0\xaf\"]}}", CodeInvalidField, "params.stop: must be valid UTF-8"},
		{"after another field", "{\"params\":{\"stop\":[]},\"name\":\"\xff\"}", CodeInvalidField, "name: must be valid UTF-8"},
		{"in a key", "{\"na\xffme\":\"a\"}", CodeBadRequest, "the body is not valid UTF-8"},
		{"outside any string", "{\"name\":\"a\"}\xff", CodeBadRequest, "the body is not valid UTF-8"},
		{"in an unknown field", "{\"other\":\"\xff\"}", CodeInvalidField, "other: must be valid UTF-8"},
		{"deep", "{\"a\":" + strings.Repeat("[", 100) + "\"\xff\"" + strings.Repeat("]", 100) + "}", CodeBadRequest, "the body is not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			var dst target
			err := DecodeJSON(req, &dst)
			if c.code == "" {
				if err != nil || !strings.HasPrefix(dst.Name, "héllo") {
					t.Fatalf("err %v, dst %+v", err, dst)
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

// TestDecodeJSONTypeMessages: a field of the wrong type is named with
// what it must be, in plain words: a fraction or a number out of range
// for a whole-number field says so, rather than "must be a number" for a
// number, and the article agrees with the kind. A whole value written with
// a fraction or an exponent (800.0, 1e3, 0.0: how Python's json writes a
// float) within the field's range is told to be written without them, and
// only a value past the field's range is out of range; before, every such
// value was "is out of range", though 800 is within maxTokens' range.
func TestDecodeJSONTypeMessages(t *testing.T) {
	t.Parallel()
	type target struct {
		Count int               `json:"count"`
		Small int8              `json:"small"`
		Units uint8             `json:"units"`
		Max   *int              `json:"maxTokens"`
		Ratio float64           `json:"ratio"`
		Stop  []string          `json:"stop"`
		Meta  map[string]string `json:"meta"`
		On    bool              `json:"on"`
		Name  string            `json:"name"`
	}
	for _, c := range []struct{ body, want string }{
		{`{"count":"two"}`, "count: must be a whole number"},
		{`{"count":1.5}`, "count: must be a whole number"},
		{`{"count":1e-400}`, "count: must be a whole number"},
		{`{"count":1.0000000000000001}`, "count: must be a whole number"},
		{`{"count":150e-2}`, "count: must be a whole number"},
		{`{"count":1e-99999999999999999999}`, "count: must be a whole number"},
		{`{"count":100e-2}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":0e-400}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":1e99999999999999999999}`, "count: is out of range"},
		{`{"count":1e30}`, "count: is out of range"},
		{`{"count":1e400}`, "count: is out of range"},
		{`{"count":5.0}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":1e3}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":1.0e2}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":0.0}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":-2E1}`, "count: must be a whole number (written without a fraction or exponent)"},
		{`{"count":9223372036854775807}`, ""},
		{`{"count":9223372036854775808}`, "count: is out of range"},
		{`{"count":-9223372036854775808}`, ""},
		{`{"count":-9223372036854775809}`, "count: is out of range"},
		{`{"small":300}`, "small: is out of range"},
		{`{"small":300.0}`, "small: is out of range"},
		{`{"small":-128.0}`, "small: must be a whole number (written without a fraction or exponent)"},
		{`{"small":-129}`, "small: is out of range"},
		{`{"units":255.0}`, "units: must be a whole number (written without a fraction or exponent)"},
		{`{"units":256}`, "units: is out of range"},
		{`{"units":-1}`, "units: is out of range"},
		{`{"count":-99999999999999999999}`, "count: is out of range"},
		{`{"maxTokens":800.0}`, "maxTokens: must be a whole number (written without a fraction or exponent)"},
		{`{"ratio":"x"}`, "ratio: must be a number"},
		{`{"ratio":1e400}`, "ratio: is out of range"},
		{`{"stop":"x"}`, "stop: must be an array"},
		{`{"meta":[1]}`, "meta: must be an object"},
		{`{"on":1}`, "on: must be a boolean"},
		{`{"name":2}`, "name: must be a string"},
	} {
		t.Run(c.body, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			var dst target
			var e *Error
			err := DecodeJSON(req, &dst)
			if c.want == "" {
				if err != nil {
					t.Fatalf("err %v, want none (in range)", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Code != CodeInvalidField || e.Message != c.want {
				t.Fatalf("err %v, want %s %q", err, CodeInvalidField, c.want)
			}
		})
	}
}
