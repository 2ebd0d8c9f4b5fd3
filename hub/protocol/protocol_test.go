package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"chatd/persistence"
)

func TestDecodeClient(t *testing.T) {
	conv := "0123456789abcdef01234567"
	tests := []struct {
		name  string
		frame string
		code  string // "" means valid
		id    string // the id the error must echo
	}{
		{"send new conversation", `{"type":"send","content":"hi"}`, "", ""},
		{"send with everything", `{"type":"send","id":"x","conversationId":"` + conv + `","content":"hi","clientMessageId":"c1","parentMessageId":"","model":"m"}`, "", ""},
		{"numeric id", `{"type":"ping","id":12}`, "", ""},
		{"cancel", `{"type":"cancel","conversationId":"` + conv + `"}`, "", ""},
		{"regenerate", `{"type":"regenerate","conversationId":"` + conv + `","messageId":"` + conv + `"}`, "", ""},
		{"subscribe with cursor", `{"type":"subscribe","conversationId":"` + conv + `","messageId":"` + conv + `","lastSeq":10}`, "", ""},
		{"unsubscribe", `{"type":"unsubscribe","conversationId":"` + conv + `"}`, "", ""},
		{"surrounding space", "  \n{\"type\":\"ping\"}\n", "", ""},
		{"not json", `hello`, CodeBadFrame, ""},
		{"array", `[]`, CodeBadFrame, ""},
		{"truncated", `{"type":"ping"`, CodeBadFrame, ""},
		{"empty", ``, CodeBadFrame, ""},
		{"no type", `{"id":"a"}`, CodeUnknownType, `"a"`},
		{"unknown type", `{"type":"fly","id":"b"}`, CodeUnknownType, `"b"`},
		{"send without content", `{"type":"send","id":"c"}`, CodeInvalidField, `"c"`},
		{"send blank content", `{"type":"send","content":"  \n "}`, CodeInvalidField, ""},
		{"content of the wrong type", `{"type":"send","id":"d","content":1}`, CodeInvalidField, `"d"`},
		{"content too long", `{"type":"send","content":"` + strings.Repeat("é", MaxContentChars+1) + `"}`, CodeInvalidField, ""},
		{"content at the limit", `{"type":"send","content":"` + strings.Repeat("é", MaxContentChars) + `"}`, "", ""},
		{"bad conversation id", `{"type":"send","content":"x","conversationId":"zz"}`, CodeInvalidField, ""},
		{"bad parent id", `{"type":"send","content":"x","parentMessageId":"zz"}`, CodeInvalidField, ""},
		{"long client message id", `{"type":"send","content":"x","clientMessageId":"` + strings.Repeat("a", 65) + `"}`, CodeInvalidField, ""},
		{"cancel without conversation", `{"type":"cancel"}`, CodeInvalidField, ""},
		{"cancel of an answer", `{"type":"cancel","conversationId":"` + conv + `","messageId":"` + conv + `"}`, "", ""},
		{"cancel of a bad answer id", `{"type":"cancel","id":"f","conversationId":"` + conv + `","messageId":"zz"}`, CodeInvalidField, `"f"`},
		{"regenerate with a key", `{"type":"regenerate","conversationId":"` + conv + `","clientMessageId":"r1"}`, "", ""},
		{"send with a blank key", `{"type":"send","id":"g","content":"x","clientMessageId":" "}`, CodeInvalidField, `"g"`},
		{"send with a NUL key", `{"type":"send","content":"x","clientMessageId":"\u0000"}`, CodeInvalidField, ""},
		{"regenerate with a non-ASCII key", `{"type":"regenerate","conversationId":"` + conv + `","clientMessageId":"clé"}`, CodeInvalidField, ""},
		{"regenerate with a long key", `{"type":"regenerate","conversationId":"` + conv + `","clientMessageId":"` + strings.Repeat("a", 65) + `"}`, CodeInvalidField, ""},
		{"negative cursor", `{"type":"subscribe","conversationId":"` + conv + `","lastSeq":-1}`, CodeInvalidField, ""},
		{"cursor of the wrong type", `{"type":"subscribe","id":"e","conversationId":"` + conv + `","lastSeq":"1"}`, CodeInvalidField, `"e"`},
		{"send with a model at the limit", `{"type":"send","content":"x","model":"` + strings.Repeat("é", MaxModelChars) + `"}`, "", ""},
		{"send with a long model", `{"type":"send","id":"h","content":"x","model":"` + strings.Repeat("m", MaxModelChars+1) + `"}`, CodeInvalidField, `"h"`},
		{"regenerate with a model at the limit", `{"type":"regenerate","conversationId":"` + conv + `","model":"` + strings.Repeat("é", MaxModelChars) + `"}`, "", ""},
		{"regenerate with a long model", `{"type":"regenerate","conversationId":"` + conv + `","model":"` + strings.Repeat("m", MaxModelChars+1) + `"}`, CodeInvalidField, ""},
		{"object id", `{"type":"ping","id":{}}`, CodeInvalidField, ""},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, CodeInvalidField, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeClient([]byte(tt.frame))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Code != tt.code {
				t.Fatalf("got %v, want code %s", err, tt.code)
			}
			if string(f.ID) != tt.id {
				t.Fatalf("echoed id %s, want %s", f.ID, tt.id)
			}
		})
	}
}

func TestServerFramesEncodeOnce(t *testing.T) {
	f := Delta("c", "m", 7, "héllo\n<b>")
	var back map[string]any
	if err := json.Unmarshal(f.Data, &back); err != nil {
		t.Fatal(err)
	}
	if back["type"] != "delta" || back["seq"] != float64(7) || back["text"] != "héllo\n<b>" || f.Seq != 7 || f.MessageID != "m" {
		t.Fatalf("delta frame %s", f.Data)
	}
	if strings.ContainsAny(string(f.Data), "\n\r") {
		t.Fatalf("frame data holds a raw newline: %q", f.Data)
	}
	e := ErrorFrame(json.RawMessage(`"q"`), Errorf(CodeNotFound, "nope %d", 1))
	if string(e.Data) != `{"type":"error","id":"q","code":"not_found","message":"nope 1"}` {
		t.Fatalf("error frame %s", e.Data)
	}
}

// TestKeyProblem: an idempotency key is at most 64 visible ASCII
// characters; "" is no key. The problem names the first character not
// allowed.
func TestKeyProblem(t *testing.T) {
	for _, tc := range []struct {
		key, want string // want: a part of the problem, "" for none
	}{
		{"", ""},
		{"0b8e8a4e-1f4c-4f0e-9a57-3c1d2b9e6f10", ""},
		{"0123456789abcdef0123456789abcdef", ""},
		{"!~", ""},
		{strings.Repeat("k", 64), ""},
		{strings.Repeat("k", 65), "at most 64 characters (got 65)"},
		{" ", "U+0020 is not"},
		{"a b", "U+0020 is not"},
		{"\x00", "U+0000 is not"},
		{"k\x7f", "U+007F is not"},
		{"clé", "U+00E9 is not"},
		{"k\u200b", "U+200B is not"},
	} {
		got := KeyProblem(tc.key)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("KeyProblem(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestDoneOmittedMessages: a done carries omittedMessages when messages
// were left out, and DoneRecounted carries it 0 included, since the
// answer's message frame gave another count (a client keeps that one when
// the field is absent).
func TestDoneOmittedMessages(t *testing.T) {
	m := persistence.Message{ID: "m", ConversationID: "c", Content: "ok", Status: persistence.StatusComplete}
	three := m
	three.OmittedMessages = 3
	for _, tt := range []struct {
		name string
		f    *Frame
		want string // the field as encoded; "": absent
	}{
		{"none left out", Done(m, nil), ""},
		{"three left out", Done(three, nil), `"omittedMessages":3`},
		{"recounted to none", DoneRecounted(m, nil), `"omittedMessages":0`},
		{"recounted to three", DoneRecounted(three, nil), `"omittedMessages":3`},
	} {
		got := string(tt.f.Data)
		if tt.want == "" && strings.Contains(got, "omittedMessages") || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: %s, want %q", tt.name, got, tt.want)
		}
	}
}

// TestConversationFrames: a created or updated conversation frame
// carries the conversation; a deleted one its id alone, none of what
// the user deleted (title, system prompt, model, parameters), since
// the frame goes to every tab and through the cluster's events stream.
func TestConversationFrames(t *testing.T) {
	temp := 0.5
	c := persistence.Conversation{ID: "c1", OwnerID: "u1", Title: "a secret title", Model: "m",
		SystemPrompt: "a secret prompt", Params: &persistence.Params{Temperature: &temp}}
	for _, tc := range []struct {
		action, want string
	}{
		{"deleted", `{"type":"conversation","action":"deleted","conversation":{"id":"c1"}}`},
		{"updated", `"title":"a secret title"`},
		{"created", `"systemPrompt":"a secret prompt"`},
	} {
		f := Conversation(tc.action, c)
		if f.Type != TypeConversation || f.ConversationID != "c1" {
			t.Errorf("%s: frame %+v", tc.action, f)
		}
		if tc.action == "deleted" && string(f.Data) != tc.want || !strings.Contains(string(f.Data), tc.want) {
			t.Errorf("%s: frame %s, want %s", tc.action, f.Data, tc.want)
		}
		if got := ConversationAction(f); got != tc.action {
			t.Errorf("%s: ConversationAction %q", tc.action, got)
		}
	}
	if got := ConversationAction(Delta("c1", "m1", 1, "a")); got != "" {
		t.Errorf("ConversationAction of a delta: %q, want none", got)
	}
}
