package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

func updateTests() []storeTest {
	return []storeTest{
		{"AppendInOrder", testUpdAppendInOrder},
		{"AppendUnicode", testUpdAppendUnicode},
		{"FinalFields", testUpdFinalFields},
		{"ZeroFieldsUnchanged", testUpdZeroFields},
		{"Batch", testUpdBatch},
		{"UnknownSkipped", testUpdUnknownSkipped},
		{"EmptyBatch", testUpdEmptyBatch},
		{"FenceAfterInterrupt", testUpdFenceAfterInterrupt},
		{"RetriedFinalIdempotent", testUpdRetriedFinal},
		{"FinalEndsBatch", testUpdFinalEndsBatch},
		{"InterruptStreaming", testUpdInterrupt},
		{"InterruptMessage", testUpdInterruptOne},
		{"SetOmittedMessages", testUpdSetOmitted},
	}
}

// streamingFixture makes a user, a conversation, a question and a streaming answer.
func streamingFixture(t *testing.T, s persistence.Store, initial string) (persistence.User, persistence.Conversation, persistence.Message) {
	t.Helper()
	u := mkUser(t, s, "streamer")
	c := mkConv(t, s, u.ID, "stream")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	return u, c, mkStreaming(t, s, c, q.ID, initial)
}

// apply writes one batch and fails the test on error or when an update
// did not apply.
func apply(t *testing.T, s persistence.Store, ups ...persistence.MessageUpdate) {
	t.Helper()
	if skipped := applySkipping(t, s, ups...); len(skipped) > 0 {
		t.Fatalf("ApplyMessageUpdates skipped %v, want every update applied", skipped)
	}
}

// applySkipping writes one batch, fails the test on error and returns the
// ids that did not apply, sorted.
func applySkipping(t *testing.T, s persistence.Store, ups ...persistence.MessageUpdate) []string {
	t.Helper()
	skipped, err := s.ApplyMessageUpdates(testCtx(t), ups)
	noErr(t, "ApplyMessageUpdates", err)
	slices.Sort(skipped)
	return skipped
}

// wantSkipped fails unless skipped holds exactly ids.
func wantSkipped(t *testing.T, what string, skipped []string, ids ...string) {
	t.Helper()
	ids = slices.Clone(ids)
	slices.Sort(ids)
	if !slices.Equal(skipped, ids) {
		t.Fatalf("%s: ApplyMessageUpdates skipped %q, want %q", what, skipped, ids)
	}
}

// sameAt fails unless got is at, allowing truncation to milliseconds.
func sameAt(t *testing.T, what string, got, at time.Time) {
	t.Helper()
	if !got.Equal(at) && !got.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("%s = %v, want %v", what, got, at)
	}
}

func testUpdAppendInOrder(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "Start:")
	var want strings.Builder
	want.WriteString("Start:")
	for i := range 200 {
		chunk := fmt.Sprintf(" tok%d", i)
		want.WriteString(chunk)
		apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: chunk, At: time.Now()})
	}
	got := getMsg(t, s, u.ID, m.ID)
	if got.Content != want.String() {
		t.Fatalf("content after 200 appends =\n%q\nwant\n%q", got.Content, want.String())
	}
	if got.Status != persistence.StatusStreaming {
		t.Fatalf("appends changed status to %q", got.Status)
	}
}

func testUpdAppendUnicode(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "")
	chunks := []string{"héllo ", "wörld, ", "世界", "，", "привет ", "🎉", "👩‍💻", " 🇩🇪 ", "e\u0301", "\t\n", `"quotes" \ 'single' `, "% _ * end"}
	for _, c := range chunks {
		apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: c})
	}
	got := getMsg(t, s, u.ID, m.ID)
	if want := strings.Join(chunks, ""); got.Content != want {
		t.Fatalf("content = %q, want %q", got.Content, want)
	}
}

func testUpdFinalFields(t *testing.T, s persistence.Store) {
	u, c, m := streamingFixture(t, s, "partial")
	at := time.Now().Add(time.Second).UTC()
	usage := &persistence.Usage{PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30}
	apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: " done", Status: persistence.StatusComplete,
		FinishReason: "stop", Usage: usage, At: at})
	got := getMsg(t, s, u.ID, m.ID)
	want := m
	want.Content, want.Status, want.FinishReason, want.Usage = "partial done", persistence.StatusComplete, "stop", usage
	want.UpdatedAt = got.UpdatedAt
	sameMsg(t, got, want)
	sameAt(t, "UpdatedAt", got.UpdatedAt, at)

	// A final message is not updated any more (the fence): a later error
	// is skipped and changes nothing.
	skipped := applySkipping(t, s, persistence.MessageUpdate{ID: m.ID, Status: persistence.StatusError,
		Error: "upstream failed", At: at.Add(time.Second)})
	wantSkipped(t, "an update of a complete message", skipped, m.ID)
	sameMsg(t, getMsg(t, s, u.ID, m.ID), got)

	ms, err := s.Messages(testCtx(t), u.ID, c.ID)
	noErr(t, "Messages", err)
	if len(ms) != 2 || ms[1].ID != m.ID {
		t.Fatalf("Messages = %v, want the question then %s", msgIDs(ms), m.ID)
	}
	sameMsg(t, ms[1], got)
}

func testUpdZeroFields(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "abc")
	apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: "def"})
	got := getMsg(t, s, u.ID, m.ID)
	want := m
	want.Content = "abcdef"
	want.UpdatedAt = got.UpdatedAt
	sameMsg(t, got, want)

	apply(t, s, persistence.MessageUpdate{ID: m.ID, Usage: &persistence.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}})
	apply(t, s, persistence.MessageUpdate{ID: m.ID, FinishReason: "length"})
	got = getMsg(t, s, u.ID, m.ID)
	if got.Content != "abcdef" || got.Status != persistence.StatusStreaming || got.FinishReason != "length" ||
		got.Usage == nil || got.Usage.TotalTokens != 2 || got.Error != "" {
		t.Fatalf("after partial updates: %+v usage %v", got, got.Usage)
	}
}

func testUpdBatch(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "batcher")
	c := mkConv(t, s, u.ID, "batch")
	var ms []persistence.Message
	for i := range 10 {
		ms = append(ms, mkStreaming(t, s, c, "", fmt.Sprintf("m%d:", i)))
	}
	bystander := mkStreaming(t, s, c, "", "untouched")
	at := time.Now().UTC()
	var ups []persistence.MessageUpdate
	for i, m := range ms {
		up := persistence.MessageUpdate{ID: m.ID, Append: fmt.Sprintf("+%d", i), At: at}
		if i%2 == 0 {
			up.Status, up.FinishReason = persistence.StatusComplete, "stop"
			up.Usage = &persistence.Usage{PromptTokens: i, CompletionTokens: i, TotalTokens: 2 * i}
		}
		ups = append(ups, up)
	}
	apply(t, s, ups...)
	for i, m := range ms {
		got := getMsg(t, s, u.ID, m.ID)
		if want := fmt.Sprintf("m%d:+%d", i, i); got.Content != want {
			t.Fatalf("message %d content = %q, want %q", i, got.Content, want)
		}
		wantStatus := persistence.StatusStreaming
		if i%2 == 0 {
			wantStatus = persistence.StatusComplete
			if got.Usage == nil || got.Usage.TotalTokens != 2*i || got.FinishReason != "stop" {
				t.Fatalf("message %d: usage %v finish %q", i, got.Usage, got.FinishReason)
			}
		} else if got.Usage != nil {
			t.Fatalf("message %d: usage %v, want nil", i, got.Usage)
		}
		if got.Status != wantStatus {
			t.Fatalf("message %d status = %q, want %q", i, got.Status, wantStatus)
		}
		sameAt(t, "UpdatedAt", got.UpdatedAt, at)
	}
	sameMsg(t, getMsg(t, s, u.ID, bystander.ID), bystander)
}

// testUpdUnknownSkipped: updates of unknown ids change nothing and are
// returned as skipped; the others in the batch apply.
func testUpdUnknownSkipped(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "x")
	unknown := []string{persistence.NewID(), "not-an-id", persistence.NewID()}
	skipped := applySkipping(t, s,
		persistence.MessageUpdate{ID: unknown[0], Append: "lost", Status: persistence.StatusComplete},
		persistence.MessageUpdate{ID: unknown[1], Append: "lost"},
		persistence.MessageUpdate{ID: m.ID, Append: "y"},
		persistence.MessageUpdate{ID: unknown[2], Append: "lost"},
	)
	wantSkipped(t, "unknown ids", skipped, unknown...)
	if got := getMsg(t, s, u.ID, m.ID); got.Content != "xy" {
		t.Fatalf("content = %q, want %q", got.Content, "xy")
	}
}

// testUpdFenceAfterInterrupt: once another instance ended an answer
// (InterruptMessage), the late checkpoints and the final update of its
// first instance change nothing and are returned as skipped, in a batch
// where updates of other messages still apply.
func testUpdFenceAfterInterrupt(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, c, m := streamingFixture(t, s, "checkpoint ")
	other := mkStreaming(t, s, c, "", "other ")
	at := time.Now().Add(time.Minute)
	ended, err := s.InterruptMessage(ctx, u.ID, m.ID, "taken over", at)
	noErr(t, "InterruptMessage", err)
	for _, tt := range []struct {
		name string
		up   persistence.MessageUpdate
	}{
		{"checkpoint", persistence.MessageUpdate{ID: m.ID, Append: "late text ", At: at.Add(time.Second)}},
		{"reasoning", persistence.MessageUpdate{ID: m.ID, AppendReasoning: "late thought", At: at.Add(time.Second)}},
		{"final", persistence.MessageUpdate{ID: m.ID, Append: "the end.", Status: persistence.StatusComplete,
			FinishReason: "stop", Usage: &persistence.Usage{TotalTokens: 9}, At: at.Add(2 * time.Second)}},
	} {
		skipped := applySkipping(t, s, tt.up, persistence.MessageUpdate{ID: other.ID, Append: tt.name + " "})
		wantSkipped(t, tt.name+" after InterruptMessage", skipped, m.ID)
		sameMsg(t, getMsg(t, s, u.ID, m.ID), ended)
	}
	if got := getMsg(t, s, u.ID, other.ID); got.Content != "other checkpoint reasoning final " || got.Status != persistence.StatusStreaming {
		t.Fatalf("the other message: status %q content %q", got.Status, got.Content)
	}
}

// testUpdRetriedFinal: a final update written again (its first write
// applied but the writer did not learn it, and retried) is skipped: the
// text is not appended twice and the first final state stays.
func testUpdRetriedFinal(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "Once ")
	final := persistence.MessageUpdate{ID: m.ID, Append: "upon a time.", Status: persistence.StatusComplete,
		FinishReason: "stop", At: time.Now()}
	apply(t, s, final)
	first := getMsg(t, s, u.ID, m.ID)
	if first.Content != "Once upon a time." || first.Status != persistence.StatusComplete {
		t.Fatalf("after the final update: status %q content %q", first.Status, first.Content)
	}
	// The same update again, as the batching writer retries it: nothing
	// changes. (Whether it counts as skipped is left open: the MongoDB
	// store sees its own status and time stored, and reports it applied,
	// which is what the caller needs to know.)
	_, err := s.ApplyMessageUpdates(testCtx(t), []persistence.MessageUpdate{final})
	noErr(t, "ApplyMessageUpdates(the same final update)", err)
	sameMsg(t, getMsg(t, s, u.ID, m.ID), first)
	retry := final
	retry.At = final.At.Add(time.Second)
	wantSkipped(t, "a later final update", applySkipping(t, s, retry), m.ID)
	sameMsg(t, getMsg(t, s, u.ID, m.ID), first)
}

// testUpdFinalEndsBatch: the fence holds within one batch too. The
// updates of a message after its first final one change nothing (no text,
// no field, no time), and the message's id is not skipped, since its
// final update applied; a message already ended before the batch is
// skipped once, however many updates it had.
func testUpdFinalEndsBatch(t *testing.T, s persistence.Store) {
	at := time.Now().Add(time.Second).UTC()
	usage := &persistence.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}
	for _, tt := range []struct {
		name   string
		ups    []persistence.MessageUpdate // ID filled with the message's
		status persistence.Status
		text   string
		finish string
		errMsg string
		code   string
		usage  *persistence.Usage
	}{
		{"complete then append", []persistence.MessageUpdate{
			{Append: "b", Status: persistence.StatusComplete, FinishReason: "stop", At: at},
			{Append: "c", AppendReasoning: "late", At: at.Add(time.Second)},
		}, persistence.StatusComplete, "Ab", "stop", "", "", nil},
		{"complete then error", []persistence.MessageUpdate{
			{Append: "b", Status: persistence.StatusComplete, FinishReason: "stop", At: at},
			{Status: persistence.StatusError, Error: "boom", ErrorCode: "upstream", At: at.Add(time.Second)},
		}, persistence.StatusComplete, "Ab", "stop", "", "", nil},
		{"error then append and usage", []persistence.MessageUpdate{
			{Status: persistence.StatusError, Error: "e1", ErrorCode: "c1", At: at},
			{Append: "late", Usage: usage, FinishReason: "length", At: at.Add(time.Second)},
		}, persistence.StatusError, "A", "", "e1", "c1", nil},
		{"checkpoint, final, checkpoint", []persistence.MessageUpdate{
			{Append: "b", At: at.Add(-time.Second)},
			{Append: "c", Status: persistence.StatusComplete, FinishReason: "stop", Usage: usage, At: at},
			{Append: "d", Status: persistence.StatusStreaming, At: at.Add(time.Second)},
		}, persistence.StatusComplete, "Abc", "stop", "", "", usage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, c, m := streamingFixture(t, s, "A")
			other := mkStreaming(t, s, c, "", "o")
			ups := []persistence.MessageUpdate{{ID: other.ID, Append: "k"}}
			for _, up := range tt.ups {
				up.ID = m.ID
				ups = append(ups, up)
			}
			wantSkipped(t, tt.name, applySkipping(t, s, ups...))
			got := getMsg(t, s, u.ID, m.ID)
			want := m
			want.Content, want.Status, want.FinishReason, want.Error, want.ErrorCode, want.Usage =
				tt.text, tt.status, tt.finish, tt.errMsg, tt.code, tt.usage
			want.UpdatedAt = got.UpdatedAt
			sameMsg(t, got, want)
			sameAt(t, "UpdatedAt", got.UpdatedAt, at)
			// The batch again, a minute later (a final update found stored
			// with its own time may count as applied: see
			// RetriedFinalIdempotent): the message ended before it, so
			// none of its updates applies and its id is skipped once.
			for i := range ups[1:] {
				ups[i+1].At = ups[i+1].At.Add(time.Minute)
			}
			wantSkipped(t, tt.name+" again", applySkipping(t, s, ups...), m.ID)
			sameMsg(t, getMsg(t, s, u.ID, m.ID), got)
			if o := getMsg(t, s, u.ID, other.ID); o.Content != "okk" || o.Status != persistence.StatusStreaming {
				t.Fatalf("the other message: status %q content %q, want streaming %q", o.Status, o.Content, "okk")
			}
		})
	}
}

func testUpdEmptyBatch(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "x")
	wantSkipped(t, "ApplyMessageUpdates(nil)", applySkipping(t, s))
	wantSkipped(t, "ApplyMessageUpdates(empty)", applySkipping(t, s, []persistence.MessageUpdate{}...))
	sameMsg(t, getMsg(t, s, u.ID, m.ID), m)
}

// testUpdInterrupt: InterruptStreaming (the start-up sweep) ends every
// streaming message, of every owner, keeping its text and storing the
// restart as its error code and error; it changes no final message.
func testUpdInterrupt(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	n, err := s.InterruptStreaming(ctx)
	noErr(t, "InterruptStreaming(empty store)", err)
	if n != 0 {
		t.Fatalf("InterruptStreaming on an empty store = %d", n)
	}
	a, b := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	ca, cb := mkConv(t, s, a.ID, "a"), mkConv(t, s, b.ID, "b")
	streaming := []persistence.Message{
		mkStreaming(t, s, ca, "", "half an ans"),
		mkStreaming(t, s, ca, "", ""),
		mkStreaming(t, s, cb, "", "bob's partial"),
	}
	done := []persistence.Message{
		mkMsg(t, s, ca, "", persistence.RoleUser, "question"),
		mkMsg(t, s, cb, "", persistence.RoleAssistant, "complete answer"),
	}
	failed := mkStreaming(t, s, cb, "", "failed")
	apply(t, s, persistence.MessageUpdate{ID: failed.ID, Status: persistence.StatusError, Error: "boom"})
	failed = getMsg(t, s, b.ID, failed.ID)
	done = append(done, failed)

	n, err = s.InterruptStreaming(ctx)
	noErr(t, "InterruptStreaming", err)
	if n != len(streaming) {
		t.Fatalf("InterruptStreaming = %d, want %d", n, len(streaming))
	}
	for _, m := range streaming {
		got := getMsg(t, s, m.OwnerID, m.ID)
		if got.Status != persistence.StatusInterrupted || got.Content != m.Content {
			t.Fatalf("streaming message after InterruptStreaming: status %q content %q", got.Status, got.Content)
		}
		// The reader is told why it stopped, as after a clean stop.
		if got.ErrorCode != persistence.RestartErrorCode || got.Error != persistence.RestartError {
			t.Fatalf("streaming message after InterruptStreaming: errorCode %q error %q, want %q %q",
				got.ErrorCode, got.Error, persistence.RestartErrorCode, persistence.RestartError)
		}
	}
	for _, m := range done {
		sameMsg(t, getMsg(t, s, m.OwnerID, m.ID), m)
	}
	n, err = s.InterruptStreaming(ctx)
	noErr(t, "second InterruptStreaming", err)
	if n != 0 {
		t.Fatalf("second InterruptStreaming = %d, want 0", n)
	}
}

// testUpdInterruptOne: InterruptMessage ends exactly one streaming message
// of its owner, keeping its stored text, and changes nothing else: not a
// final message, not another owner's, not the other streaming ones.
func testUpdInterruptOne(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, c, m := streamingFixture(t, s, "checkpoint text")
	other := mkStreaming(t, s, c, "", "still going")
	bob := mkUser(t, s, "bob")
	at := time.Now().Add(time.Minute)

	_, err := s.InterruptMessage(ctx, bob.ID, m.ID, "gone", at)
	wantErr(t, "InterruptMessage(another owner's message)", err, persistence.ErrNotFound)
	for _, id := range badIDs() {
		_, err := s.InterruptMessage(ctx, u.ID, id, "gone", at)
		wantErr(t, "InterruptMessage(unknown id "+id+")", err, persistence.ErrNotFound)
	}
	if got := getMsg(t, s, u.ID, m.ID); got.Status != persistence.StatusStreaming {
		t.Fatalf("status after refused InterruptMessage calls = %q, want streaming", got.Status)
	}

	got, err := s.InterruptMessage(ctx, u.ID, m.ID, "the instance running it stopped", at)
	noErr(t, "InterruptMessage", err)
	if got.Status != persistence.StatusInterrupted || got.Content != "checkpoint text" ||
		got.Error != "the instance running it stopped" {
		t.Fatalf("InterruptMessage returned status %q content %q error %q", got.Status, got.Content, got.Error)
	}
	sameAt(t, "UpdatedAt", got.UpdatedAt, at)
	sameMsg(t, getMsg(t, s, u.ID, m.ID), got)
	if o := getMsg(t, s, u.ID, other.ID); o.Status != persistence.StatusStreaming {
		t.Fatalf("the other streaming message became %q", o.Status)
	}

	// A final message is returned as it is: a late claim never overwrites
	// an answer its owner finished.
	apply(t, s, persistence.MessageUpdate{ID: other.ID, Append: " and done", Status: persistence.StatusComplete, At: time.Now()})
	again, err := s.InterruptMessage(ctx, u.ID, other.ID, "late", at.Add(time.Minute))
	noErr(t, "InterruptMessage(complete message)", err)
	if again.Status != persistence.StatusComplete || again.Content != "still going and done" || again.Error != "" {
		t.Fatalf("InterruptMessage changed a complete message: status %q content %q error %q", again.Status, again.Content, again.Error)
	}
	if twice, err := s.InterruptMessage(ctx, u.ID, m.ID, "", at.Add(time.Hour)); err != nil || twice.Error != got.Error {
		t.Fatalf("second InterruptMessage: %v, error %q (want the first one's %q kept)", err, twice.Error, got.Error)
	}
}

// testUpdSetOmitted: SetOmittedMessages changes a streaming answer's
// count of messages left out of its prompt, answers another owner's and
// unknown ids as not found without changing anything, and leaves an
// answer that ended as it is.
func testUpdSetOmitted(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, c, m := streamingFixture(t, s, "text so far")
	bob := mkUser(t, s, "bob")

	wantErr(t, "SetOmittedMessages(another owner's message)", s.SetOmittedMessages(ctx, bob.ID, m.ID, 7), persistence.ErrNotFound)
	for _, id := range badIDs() {
		wantErr(t, "SetOmittedMessages(unknown id "+id+")", s.SetOmittedMessages(ctx, u.ID, id, 7), persistence.ErrNotFound)
	}
	if got := getMsg(t, s, u.ID, m.ID); got.OmittedMessages != 0 {
		t.Fatalf("OmittedMessages after refused calls = %d, want 0", got.OmittedMessages)
	}

	noErr(t, "SetOmittedMessages", s.SetOmittedMessages(ctx, u.ID, m.ID, 5))
	got := getMsg(t, s, u.ID, m.ID)
	if got.OmittedMessages != 5 || got.Status != persistence.StatusStreaming || got.Content != "text so far" {
		t.Fatalf("after SetOmittedMessages: omitted %d, status %q, content %q", got.OmittedMessages, got.Status, got.Content)
	}

	apply(t, s, persistence.MessageUpdate{ID: m.ID, Status: persistence.StatusComplete, FinishReason: "stop"})
	noErr(t, "SetOmittedMessages(an ended answer)", s.SetOmittedMessages(ctx, u.ID, m.ID, 9))
	if got := getMsg(t, s, u.ID, m.ID); got.OmittedMessages != 5 || got.Status != persistence.StatusComplete {
		t.Fatalf("an ended answer became omitted %d, status %q; want 5, complete", got.OmittedMessages, got.Status)
	}
	_ = c
}
