package batch_test

import (
	"testing"
	"time"

	"chatd/persistence/batch"
)

// testReasoning: reasoning and content of one answer, interleaved and cut
// inside multi-byte characters, reach the store apart and whole, both at
// checkpoints while streaming (no Finish yet) and with the final update.
func testReasoning(t *testing.T, open openStore) {
	const interval = 5 * time.Millisecond
	ctx := ctxFor(t)
	f := newFixture(t, open)
	m := f.answer(t)
	w := batch.New(f.store, batch.Options{Interval: interval})
	thought := "Hmm 🙂, 中文 thinking"
	for i := range len(thought) { // byte by byte: characters arrive cut in pieces
		w.AppendReasoning(m.ID, thought[i:i+1])
	}
	eventually(t, "the reasoning checkpointed", func() bool {
		got, err := f.store.Message(ctx, f.conv.OwnerID, m.ID)
		return err == nil && got.Reasoning == thought && got.Content == ""
	})
	w.Append(m.ID, "The answer ")
	w.AppendReasoning(m.ID, " more")
	w.Append(m.ID, "is 42.")
	final := done(m.ID, 3)
	must(t, "Finish", w.Finish(ctx, final))
	must(t, "Close", w.Close(ctx))
	f.check(t, m.ID, "The answer is 42.", final)
	got, err := f.store.Message(ctx, f.conv.OwnerID, m.ID)
	must(t, "Message", err)
	if want := thought + " more"; got.Reasoning != want {
		t.Fatalf("stored reasoning %q, want %q", got.Reasoning, want)
	}
}

// eventually polls cond until it holds or two minutes pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
