package hub

import (
	"encoding/json"
	"testing"

	"chatd/hub/protocol"
)

// deltaTextByJSON is what deltaText must return: encoding/json's reading.
func deltaTextByJSON(data []byte) (string, error) {
	var d struct {
		Text string `json:"text"`
	}
	err := json.Unmarshal(data, &d)
	return d.Text, err
}

// TestDeltaText checks the reading without decoding against encoding/json,
// on frames the hub encodes and on hand-made ones it must leave to json.
func TestDeltaText(t *testing.T) {
	t.Parallel()
	texts := []string{"", "hello", "中文 and emoji 🎉", `quote " inside`, `back\slash`, "new\nline",
		"tab\tand \x01 control", `,"text":"`, "<b>&amp;</b>", "\u2028 separator", "invalid \xff utf-8"}
	var frames [][]byte
	for _, text := range texts {
		frames = append(frames, protocol.Delta("c1", "m1", 42, text).Data, protocol.DeltaAt("c1", "m1", 42, 7, text).Data)
	}
	frames = append(frames,
		[]byte(`{"text":"first member"}`),
		[]byte(`{"type":"delta","text":"a","seq":3}`),
		[]byte(`{"type":"delta","text":"a","x":"b"}`),
		[]byte(`{"type":"delta","text":"unterminated}`),
		[]byte(`{"type":"delta" ,"text":"spaced"}`),
		[]byte(`{"type":"delta","text":null}`),
		[]byte(`not json,"text":"x"}`),
	)
	for _, data := range frames {
		got, gotErr := deltaText(&protocol.Frame{Data: data})
		want, wantErr := deltaTextByJSON(data)
		if (gotErr != nil) != (wantErr != nil) || got != want {
			t.Errorf("deltaText(%s) = %q, %v; encoding/json reads %q, %v", data, got, gotErr, want, wantErr)
		}
	}
}

func FuzzDeltaText(f *testing.F) {
	f.Add("hello")
	f.Add(`a","text":"b`)
	f.Add("\xff\x00\\")
	f.Fuzz(func(t *testing.T, text string) {
		data := protocol.Delta("c", "m", 1, text).Data
		got, err := deltaText(&protocol.Frame{Data: data})
		want, wantErr := deltaTextByJSON(data)
		if err != nil || wantErr != nil || got != want {
			t.Fatalf("deltaText(%s) = %q, %v; encoding/json reads %q, %v", data, got, err, want, wantErr)
		}
	})
}
