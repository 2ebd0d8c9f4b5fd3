package openai

import (
	"bytes"
	"encoding/json"
)

// contentKey is the key of a delta's content.
var contentKey = []byte(`"content"`)

// hasContentList reports a "content" key whose value is a list (white
// space allowed around the colon): the lines flattenParts may rewrite.
func hasContentList(payload []byte) bool {
	for {
		i := bytes.Index(payload, contentKey)
		if i < 0 {
			return false
		}
		payload = bytes.TrimLeft(payload[i+len(contentKey):], " \t\r")
		if rest, ok := bytes.CutPrefix(payload, []byte(":")); ok && len(bytes.TrimLeft(rest, " \t\r")) > 0 &&
			bytes.TrimLeft(rest, " \t\r")[0] == '[' {
			return true
		}
	}
}

// flattenParts rewrites a chunk whose delta content is a list of parts,
// as Mistral's reasoning models (Magistral) stream it, into go-openai's
// shape: [{"type":"thinking","thinking":[{"type":"text","text":...}]}]
// becomes that text in "reasoning_content", [{"type":"text","text":...}]
// (or plain strings) becomes the "content" string; parts of other types
// are left out. go-openai, whose content is a string, failed the whole
// stream on the first such chunk. It returns the chunk's new JSON, or nil
// when payload has no such list (or is no chunk).
func flattenParts(payload []byte) []byte {
	var chunk map[string]json.RawMessage
	var choices []map[string]json.RawMessage
	if json.Unmarshal(payload, &chunk) != nil || json.Unmarshal(chunk["choices"], &choices) != nil {
		return nil
	}
	changed := false
	for _, ch := range choices {
		var delta map[string]json.RawMessage
		if json.Unmarshal(ch["delta"], &delta) != nil {
			continue
		}
		text, thinking, ok := partsText(delta["content"])
		if !ok {
			continue
		}
		delta["content"] = marshal(text)
		if thinking != "" && !hasText(delta["reasoning_content"]) {
			delta["reasoning_content"] = marshal(thinking)
		}
		ch["delta"], changed = marshal(delta), true
	}
	if !changed {
		return nil
	}
	chunk["choices"] = marshal(choices)
	return marshal(chunk)
}

// part is one element of a content list.
type part struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	Thinking json.RawMessage `json:"thinking"`
}

// partsText returns the text and the thinking of a content that is a list
// of parts; ok is false when raw is no such list.
func partsText(raw json.RawMessage) (text, thinking string, ok bool) {
	var list []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return "", "", false
	}
	var tb, th bytes.Buffer
	for _, el := range list {
		var s string
		if json.Unmarshal(el, &s) == nil {
			tb.WriteString(s)
			continue
		}
		var p part
		if json.Unmarshal(el, &p) != nil {
			continue
		}
		switch p.Type {
		case "text":
			tb.WriteString(p.Text)
		case "thinking":
			inner, _, isList := partsText(p.Thinking)
			if !isList {
				_ = json.Unmarshal(p.Thinking, &inner) // a plain string
			}
			th.WriteString(inner)
		}
	}
	return tb.String(), th.String(), true
}

// hasText reports a JSON string value that is not empty.
func hasText(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil && s != ""
}

// marshal encodes v without escaping HTML characters; v is always
// encodable here (strings and JSON already decoded).
func marshal(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(b.Bytes(), "\n")
}
