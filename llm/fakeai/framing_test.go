package fakeai_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"chatd/llm/fakeai"
)

// sseData reads a body as the SSE specification says (a leading byte
// order mark dropped; CR LF, LF or CR ending a line; the data lines of one
// event joined with LF) and returns each event's data and event type.
func sseData(body string) (data, types []string) {
	body = strings.TrimPrefix(body, "\ufeff")
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	var buf []string
	typ := ""
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if buf != nil {
				data, types = append(data, strings.Join(buf, "\n")), append(types, typ)
			}
			buf, typ = nil, ""
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			buf = append(buf, value)
		case "event":
			typ = value
		}
	}
	return data, types
}

// TestFramings: every framing is a stream the SSE specification reads as
// the usual one (the same chunks, the same text), in the shape it names.
func TestFramings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		framing fakeai.Framing
		shape   func(body string) bool
	}{
		{fakeai.FramingLF, func(b string) bool { return !strings.Contains(b, "\r") }},
		{fakeai.FramingCR, func(b string) bool { return !strings.Contains(b, "\n") && strings.Contains(b, "\r\r") }},
		{fakeai.FramingCRLF, func(b string) bool { return strings.Count(b, "\r\n") == strings.Count(b, "\n") }},
		{fakeai.FramingMultiline, func(b string) bool { return strings.Contains(b, ",\ndata: \"") }},
		{fakeai.FramingBOM, func(b string) bool {
			return strings.HasPrefix(b, "\ufeffevent: message\n") && strings.Count(b, "\ufeff") == 1
		}},
	}
	srv := fakeai.Start(t, fakeai.Options{})
	for _, tc := range tests {
		t.Run(string(tc.framing), func(t *testing.T) {
			t.Parallel()
			resp := post(t, testCtx(t), srv.URL, streamBody("go [[fake tokens=6 events=true framing="+string(tc.framing)+"]]", true), nil)
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.shape(string(raw)) {
				t.Fatalf("body not in the %q shape: %q", tc.framing, raw)
			}
			data, types := sseData(string(raw))
			if len(data) == 0 || data[len(data)-1] != "[DONE]" {
				t.Fatalf("events %q, want [DONE] last", data)
			}
			var text strings.Builder
			for i, d := range data[:len(data)-1] {
				var c chunk
				if err := json.Unmarshal([]byte(d), &c); err != nil || types[i] != "message" {
					t.Fatalf("event %d (%q, type %q): %v", i, d, types[i], err)
				}
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil {
						text.WriteString(*ch.Delta.Content)
					}
				}
			}
			if want := fakeai.ExpectedText(fakeai.Config{Tokens: 6}); text.String() != want {
				t.Fatalf("text %q, want %q", text.String(), want)
			}
		})
	}
}

// TestEventErrorFault: event_error ends the stream after its tokens with
// an error event whose data is the error object, without an "error"
// member, then [DONE].
func TestEventErrorFault(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	resp := post(t, testCtx(t), srv.URL, streamBody("go [[fake tokens=6 after=2 fault=event_error]]", false), nil)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	data, types := sseData(string(raw))
	n := len(data)
	if n < 2 || types[n-2] != "error" || data[n-1] != "[DONE]" {
		t.Fatalf("events %q of types %q", data, types)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(data[n-2]), &e); err != nil || e["message"] == nil || e["error"] != nil {
		t.Fatalf("error event %q: %v", data[n-2], err)
	}
}
