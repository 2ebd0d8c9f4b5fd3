package docs

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/llm/models"
)

// reasoningTranscripts returns the WebSocket transcripts of protocol.md's
// reasoning session (its SSE block aside), and the Last-Event-ID its SSE
// resume starts from.
func reasoningTranscripts(t *testing.T) (blocks [][]transcriptLine, lastEventID []string) {
	t.Helper()
	prose := continuation.ReplaceAllString(strings.Join(docSection(t, reasoningSession), "\n"), " ")
	for _, b := range readBlocks(t, "protocol.md") {
		if b.section != reasoningSession || b.lang != "" || len(b.lines) == 0 || b.lines[0] == ": open" {
			continue
		}
		blocks = append(blocks, transcript(t, b))
	}
	lastEventID = lastEventIDRe.FindStringSubmatch(prose)
	if len(blocks) < 3 || lastEventID == nil {
		t.Fatalf("protocol.md %q: want the transcripts (first answer, second question dropped, resume) and a Last-Event-ID; found %d transcripts",
			reasoningSession, len(blocks))
	}
	return blocks, lastEventID
}

// TestReasoningSessionReplays replays protocol.md's reasoning session as
// TestWalkthroughReplays does the wscat one, against a real server whose
// upstream is the fake with the flags the section names: every frame typed
// is sent (the ids and the resume's cursors standing for the server's),
// and the server must answer with the documented frames, in order, with
// the same fields and the same values where they do not depend on time or
// on how timing cuts text and reasoning into frames; each answer's whole
// text and reasoning must be the documented ones. Before the block that
// reconnects, the answer it resumes is let end, as the section says it had.
func TestReasoningSessionReplays(t *testing.T) {
	t.Parallel()
	prose := continuation.ReplaceAllString(strings.Join(docSection(t, reasoningSession), "\n"), " ")
	flags := fakeFlagsRe.FindStringSubmatch(prose)
	if flags == nil {
		t.Fatalf("protocol.md %q: the fake's flags are not said as before", reasoningSession)
	}
	blocks, lastEventID := reasoningTranscripts(t)
	checkSSEResumesTheSame(t, blocks, lastEventID)

	tokens, _ := strconv.Atoi(flags[1])
	reasoning, _ := strconv.Atoi(flags[2])
	fake := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: tokens, Reasoning: reasoning,
		ReasoningKey: fakeai.ReasoningKey(flags[3]), Delay: time.Millisecond}})
	srv := startServerWith(t, models.Config{BaseURL: fake.URL, APIKey: "fake", Models: "fake-reasoner",
		ReasoningModels: []string{"fake-reasoner"}})
	token := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
		`{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}`).field(t, "token")

	rp := newReplay(t, srv.URL, token)
	defer rp.hangUp()
	for i, block := range blocks {
		if i > 0 && !block[0].sent && block[0].frame["type"] == "hello" {
			rp.hangUp()
			waitResumedEnd(t, rp, srv.URL, token, block)
		}
		rp.block(i, block)
	}
}

// waitResumedEnd waits until the answers a block resumes have ended: a
// stream of an answer ends after its done.
func waitResumedEnd(t *testing.T, rp *replay, base, token string, block []transcriptLine) {
	t.Helper()
	header := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"text/event-stream"}}
	for _, l := range block {
		if !l.sent || l.frame["type"] != "subscribe" || l.frame["messageId"] == nil {
			continue
		}
		f := rp.substitute(l.where, l.frame, "").(map[string]any)
		url := fmt.Sprintf("%s/api/conversations/%s/stream?messageId=%s", base, f["conversationId"], f["messageId"])
		if r := doWith(t, http.MethodGet, url, "", header); !strings.Contains(string(r.body), "event: done") {
			t.Fatalf("%s: the answer resumed ended without its done: %d %s", l.where, r.status, r.body)
		}
	}
}

// checkSSEResumesTheSame: the SSE resume of the section is the WebSocket
// one's, from the same session: its Last-Event-ID names the answer the
// subscribe resumes and the same cursors.
func checkSSEResumesTheSame(t *testing.T, blocks [][]transcriptLine, lastEventID []string) {
	t.Helper()
	for _, b := range blocks {
		for _, l := range b {
			if !l.sent || l.frame["type"] != "subscribe" {
				continue
			}
			want := fmt.Sprintf("Last-Event-ID: %v:%v/%v", l.frame["messageId"], l.frame["lastSeq"], l.frame["lastReasoningSeq"])
			if lastEventID[0] != want {
				t.Fatalf("%s: the subscribe resumes as %q would, the SSE resume's is %q", l.where, want, lastEventID[0])
			}
			return
		}
	}
	t.Fatalf("protocol.md %q: no subscribe that resumes an answer", reasoningSession)
}
