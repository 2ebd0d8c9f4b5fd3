package hub

import (
	"strings"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// byteSub counts the bytes of the frames delivered to it, as a
// transport's queue does (outbox: the frames' Data).
type byteSub struct {
	fakeSub
	bytes int64
}

func (s *byteSub) Deliver(f *protocol.Frame) { s.bytes += int64(len(f.Data)) }

// TestCatchUpBytesBound: the frames of a catch-up of an answer whose text
// and reasoning are each maxAnswer bytes of what JSON escapes most (a
// control character, a byte that is not UTF-8, an HTML character; U+2028
// for a character of several bytes), with the ack of the resume, the
// answer's message frame and its done (with an error), stay within
// CatchUpBytes(maxAnswer): for the rest of a stored answer, a running
// one's and a mirrored one's, with pieces of catchUpPiece bytes and with
// grown ones (past 512 KiB). The 6 bytes a byte of text are reached: the
// bound is not far above a real catch-up either.
func TestCatchUpBytesBound(t *testing.T) {
	t.Parallel()
	conv, id := persistence.NewID(), persistence.NewID()
	msg := persistence.Message{ID: id, ConversationID: conv, Role: persistence.RoleAssistant,
		Model: strings.Repeat("m", 200), Status: persistence.StatusStreaming}
	sources := []struct {
		name string
		send func(sub Subscriber, text string)
	}{
		{"stored", func(sub Subscriber, text string) {
			m := msg
			m.Content, m.Reasoning, m.Status, m.Error = text, text, persistence.StatusError, strings.Repeat("e", 1000)
			for _, f := range storedRest(m, 0, 0) {
				sub.Deliver(f)
			}
		}},
		{"running", func(sub Subscriber, text string) {
			g := &generation{msg: msg, text: []byte(text), sent: len(text), reasoning: []byte(text), rsent: len(text)}
			g.catchUpLocked(sub, 0, 0, true)
		}},
		{"mirrored", func(sub Subscriber, text string) {
			m := &mirror{ref: AnswerRef{ConversationID: conv, MessageID: id}, message: protocol.Message(msg),
				text: []byte(text), reasoning: []byte(text)}
			m.catchUpLocked(sub, 0, true) // its reasoning, then its text
		}},
	}
	for _, maxAnswer := range []int{1 << 10, 256 << 10, 512<<10 + 5, 1 << 20} {
		for _, unit := range []string{"\x01", "\xff", "<", "\u2028"} {
			text := strings.Repeat(unit, maxAnswer/len(unit))
			for _, src := range sources {
				sub := &byteSub{}
				sub.Deliver(protocol.Ack([]byte(`"` + strings.Repeat("f", 64) + `"`)))
				src.send(sub, text)
				if src.name != "stored" { // storedRest ends with the done itself
					sub.Deliver(protocol.Done(msg, &protocol.ErrorBody{Code: "upstream", Message: strings.Repeat("e", 1000)}))
				}
				bound := CatchUpBytes(maxAnswer)
				if sub.bytes > bound {
					t.Errorf("%s catch-up of %d bytes of %q: %d bytes of frames, above CatchUpBytes %d", src.name, maxAnswer, unit, sub.bytes, bound)
				}
				if unit == "\x01" && sub.bytes < bound-catchUpFraming {
					t.Errorf("%s catch-up of %d bytes of %q: %d bytes of frames, under the %d of its escaped text", src.name, maxAnswer, unit, sub.bytes, bound-catchUpFraming)
				}
			}
		}
	}
}
