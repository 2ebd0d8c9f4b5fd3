package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// textFrameCases are strings json.Marshal escapes in every way it can.
var textFrameCases = []string{
	"", "hello", "héllo wörld 中文 🙂", "a\"b\\c/d", "<script>&amp;</script>", "\b\f\n\r\t\x00\x01\x1f\x7f",
	"line\u2028sep\u2029end", "bad \xff byte", "cut \xe4\xb8", "\xf0\x9f\x99", "\xed\xa0\x80 surrogate half",
	strings.Repeat("\n", 40), allBytes(), allBytes()[:utf8.RuneSelf],
}

// allBytes is every byte value in order; its ASCII half is valid UTF-8, so
// checkTextFrames compares the escape of every ASCII byte byte for byte.
func allBytes() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}

// TestTextFrameMatchesMarshal checks that delta and reasoning frames are
// the bytes json.Marshal writes for them, from a string or from bytes.
func TestTextFrameMatchesMarshal(t *testing.T) {
	t.Parallel()
	for _, text := range textFrameCases {
		checkTextFrames(t, "conv-<1>", "msg\"1", text)
	}
}

// TestTextFrameInvalidUTF8 pins invalid UTF-8 as encoding/json writes it
// by default: each bad byte as the escape \ufffd.
func TestTextFrameInvalidUTF8(t *testing.T) {
	t.Parallel()
	f := DeltaAt("c", "m", 1, 0, []byte("a\xffb\xe4\xb8"))
	if want := `{"type":"delta","conversationId":"c","messageId":"m","seq":1,"text":"a\ufffdb\ufffd\ufffd"}`; string(f.Data) != want {
		t.Fatalf("got %s, want %s", f.Data, want)
	}
}

// checkTextFrames compares the frames with json.Marshal: byte for byte when
// the strings are valid UTF-8, by value otherwise (GOEXPERIMENT=jsonv2's
// encoding/json writes U+FFFD unescaped where the default writes \ufffd).
func checkTextFrames(t *testing.T, conv, msg, text string) {
	t.Helper()
	delta, _ := json.Marshal(deltaFrame{TypeDelta, conv, msg, 42, text})
	reasoning, _ := json.Marshal(reasoningFrame{TypeReasoning, conv, msg, 7, text})
	valid := utf8.ValidString(conv + msg + text)
	tests := []struct {
		name string
		f    *Frame
		want []byte
	}{
		{"Delta", Delta(conv, msg, 42, text), delta},
		{"DeltaAt string", DeltaAt(conv, msg, 42, 7, text), delta},
		{"DeltaAt bytes", DeltaAt(conv, msg, 42, 7, []byte(text)), delta},
		{"Reasoning string", Reasoning(conv, msg, 42, 7, text), reasoning},
		{"Reasoning bytes", Reasoning(conv, msg, 42, 7, []byte(text)), reasoning},
	}
	for _, tc := range tests {
		if valid && string(tc.f.Data) != string(tc.want) || !valid && !sameJSON(tc.f.Data, tc.want) {
			t.Fatalf("%s(%q) = %s, want %s", tc.name, text, tc.f.Data, tc.want)
		}
	}
	if f := DeltaAt(conv, msg, 42, 7, text); f.Type != TypeDelta || f.Seq != 42 || f.RSeq != 7 || f.ConversationID != conv || f.MessageID != msg {
		t.Fatalf("delta frame fields %+v", f)
	}
	if f := Reasoning(conv, msg, 42, 7, text); f.Type != TypeReasoning || f.Seq != 42 || f.RSeq != 7 {
		t.Fatalf("reasoning frame fields %+v", f)
	}
}

// sameJSON reports whether a and b are JSON objects with equal values.
func sameJSON(a, b []byte) bool {
	var va, vb map[string]any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

func FuzzTextFrame(f *testing.F) {
	for _, s := range textFrameCases {
		f.Add("c", "m", s)
	}
	f.Fuzz(checkTextFrames)
}

var sinkFrame *Frame

// BenchmarkDeltaFrame encodes the delta frame of one token, from the
// answer's bytes as the hub does.
func BenchmarkDeltaFrame(b *testing.B) {
	text := []byte("[ts:1234567890123] token ")
	b.ReportAllocs()
	for b.Loop() {
		sinkFrame = DeltaAt("0193a5b2-7c1d-7e3f-9a4b-5c6d7e8f9a0b", "0193a5b2-7c1d-7e3f-9a4b-5c6d7e8f9a0c", 4242, 0, text)
	}
}

// TestTextFrameAllocations: a frame and its bytes come in one allocation
// while they fit 512 bytes (every token's frame), in two beyond; the
// bytes are json.Marshal's at every size, across each allocation's limit.
func TestTextFrameAllocations(t *testing.T) {
	conv, msg := strings.Repeat("c", 24), strings.Repeat("m", 24)
	cases := []struct {
		text   string
		allocs float64
	}{
		{"", 1}, {"hello", 1}, {"[ts:1764755000123456789] word ", 1},
		{strings.Repeat("x", 100), 1}, {strings.Repeat("é", 100), 1}, {strings.Repeat("x", 240), 1},
		{strings.Repeat("x", 350), 2}, {strings.Repeat("x", 4000), 2},
	}
	for _, tc := range cases {
		for n := max(len(tc.text)-70, 0); n <= len(tc.text); n += 7 { // the sizes around each case
			checkTextFrames(t, conv, msg, tc.text[:n])
		}
		got := testing.AllocsPerRun(100, func() { _ = DeltaAt(conv, msg, 1, 0, tc.text) })
		if got != tc.allocs {
			t.Errorf("delta of %d bytes of text: %v allocations, want %v", len(tc.text), got, tc.allocs)
		}
	}
}
