package batch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/persistence/counting"
)

// writeCounter reports how many write commands reached the database itself
// (for MongoDB, from the driver's command monitor); nil when the store has no
// such view.
type writeCounter func() int64

// openStore opens a fresh, empty store for one test, closed when it ends.
type openStore func(t *testing.T) (persistence.Store, writeCounter)

// runStoreWrites runs the write-count and round-trip checks of the Writer
// against a real store.
func runStoreWrites(t *testing.T, open openStore) {
	t.Run("WithinOneInterval", func(t *testing.T) { t.Parallel(); testWithinOneInterval(t, open) })
	t.Run("Streaming", func(t *testing.T) { t.Parallel(); testStreaming(t, open) })
	t.Run("SplitWordsSearchable", func(t *testing.T) { t.Parallel(); testSplitWordsSearchable(t, open) })
	t.Run("ConcurrentAnswers", func(t *testing.T) { t.Parallel(); testConcurrentAnswers(t, open) })
	t.Run("Reasoning", func(t *testing.T) { t.Parallel(); testReasoning(t, open) })
}

// fixture is a user's conversation with a question, in a counting store.
type fixture struct {
	store    *counting.Store
	driver   writeCounter
	conv     persistence.Conversation
	question persistence.Message
}

func newFixture(t *testing.T, open openStore) *fixture {
	t.Helper()
	ctx := ctxFor(t)
	inner, driver := open(t)
	f := &fixture{store: counting.Wrap(inner), driver: driver}
	u := persistence.User{Email: persistence.NewID() + "@example.test", Name: "writer", PasswordHash: "x"}
	must(t, "CreateUser", f.store.CreateUser(ctx, &u))
	f.conv = persistence.Conversation{OwnerID: u.ID, Title: "batch writer", Model: "test-model"}
	must(t, "CreateConversation", f.store.CreateConversation(ctx, &f.conv))
	f.question = f.message(t, persistence.RoleUser, "tell me a long story", persistence.StatusComplete)
	return f
}

// message inserts a message into the fixture's conversation.
func (f *fixture) message(t *testing.T, role persistence.Role, content string, st persistence.Status) persistence.Message {
	t.Helper()
	m := persistence.Message{ConversationID: f.conv.ID, OwnerID: f.conv.OwnerID, ParentID: f.question.ID,
		Role: role, Content: content, Status: st, Model: "test-model"}
	must(t, "InsertMessage", f.store.InsertMessage(ctxFor(t), &m))
	return m
}

// answer inserts a streaming answer, as the hub does before streaming.
func (f *fixture) answer(t *testing.T) persistence.Message {
	t.Helper()
	return f.message(t, persistence.RoleAssistant, "", persistence.StatusStreaming)
}

// driverWrites returns the database's own write count, or -1 without one.
func (f *fixture) driverWrites() int64 {
	if f.driver == nil {
		return -1
	}
	return f.driver()
}

// commands describes the database write commands since before, if known.
func (f *fixture) commands(before int64) string {
	if f.driver == nil {
		return ""
	}
	return fmt.Sprintf(", %d database write commands", f.driver()-before)
}

// check loads message id and compares it with the text and final update.
func (f *fixture) check(t *testing.T, id, text string, final persistence.MessageUpdate) {
	t.Helper()
	m, err := f.store.Message(ctxFor(t), f.conv.OwnerID, id)
	must(t, "Message", err)
	if m.Content != text {
		t.Errorf("message %s: stored %d bytes, want %d (equal: %v)", id, len(m.Content), len(text), m.Content == text)
	}
	if m.Status != final.Status || m.FinishReason != final.FinishReason || m.Error != final.Error {
		t.Errorf("message %s: status %q reason %q error %q, want %q %q %q", id, m.Status, m.FinishReason, m.Error,
			final.Status, final.FinishReason, final.Error)
	}
	if final.Usage != nil && (m.Usage == nil || *m.Usage != *final.Usage) {
		t.Errorf("message %s: usage %+v, want %+v", id, m.Usage, final.Usage)
	}
}

// testWithinOneInterval: an answer whose tokens all arrive within one
// checkpoint interval costs one write however many tokens it has.
func testWithinOneInterval(t *testing.T, open openStore) {
	f := newFixture(t, open)
	counts := map[int]int64{}
	for _, n := range []int{10, 1_000, 10_000} {
		ctx := ctxFor(t)
		m := f.answer(t)
		w := batch.New(f.store, batch.Options{Interval: time.Hour})
		f.store.Reset()
		before := f.driverWrites()
		pieces, text := words(n)
		for _, p := range pieces {
			w.Append(m.ID, p)
		}
		final := done(m.ID, n)
		must(t, "Finish", w.Finish(ctx, final))
		must(t, "Close", w.Close(ctx))
		c := f.store.Writes()
		t.Logf("%5d tokens: %d store writes (%d updates, %d bytes)%s",
			n, c.Writes, c.MessageUpdates, c.AppendedBytes, f.commands(before))
		if c.Writes != 1 || c.ByMethod["ApplyMessageUpdates"] != 1 || c.MessageUpdates != 1 {
			t.Errorf("%d tokens cost %+v, want exactly one ApplyMessageUpdates of one update", n, c)
		}
		if f.driver != nil {
			counts[n] = f.driverWrites() - before
		}
		f.check(t, m.ID, text, final)
	}
	if f.driver != nil && (counts[10] != counts[10_000] || counts[10] > 2) {
		t.Errorf("database write commands per answer %v: want the same small number for every length", counts)
	}
}

// testStreaming: an answer streamed over several checkpoint intervals costs
// at most one write per interval plus the final one, for any token count.
func testStreaming(t *testing.T, open openStore) {
	const interval = 40 * time.Millisecond
	f := newFixture(t, open)
	for _, n := range []int{1_000, 10_000} {
		ctx := ctxFor(t)
		m := f.answer(t)
		w := batch.New(f.store, batch.Options{Interval: interval})
		f.store.Reset()
		before := f.driverWrites()
		pieces, text := words(n)
		start := time.Now()
		pace(pieces, 10*interval, func(p string) { w.Append(m.ID, p) })
		final := done(m.ID, n)
		must(t, "Finish", w.Finish(ctx, final))
		elapsed := time.Since(start)
		must(t, "Close", w.Close(ctx))
		c := f.store.Writes()
		bound := int64(elapsed/interval) + 2
		t.Logf("%5d tokens over %v: %d store writes (bound %d)%s",
			n, elapsed.Round(time.Millisecond), c.Writes, bound, f.commands(before))
		if c.Writes > bound || c.Writes != c.ByMethod["ApplyMessageUpdates"] || c.Errors != 0 {
			t.Errorf("%d tokens over %v cost %+v, want at most %d ApplyMessageUpdates", n, elapsed, c, bound)
		}
		if cmds := f.driverWrites() - before; f.driver != nil && cmds != c.Writes {
			t.Errorf("%d database write commands for %d store writes, want one each", cmds, c.Writes)
		}
		f.check(t, m.ID, text, final)
	}
}

// testSplitWordsSearchable: words that arrive in several pieces, with
// checkpoints between the pieces, are stored whole and found by search.
// After each piece holding a space the test waits for the checkpoint that
// writes up to it (a bulk write, told by flushNotice), so a checkpoint
// runs while the word after it is partial: "photo" of photosynthesis,
// "chloro" of chloroplasts, "extra" of extraordinary, 数据 of the CJK run
// (no space inside it: held back as one word).
func testSplitWordsSearchable(t *testing.T, open openStore) {
	const interval = 5 * time.Millisecond
	ctx := ctxFor(t)
	f := newFixture(t, open)
	m := f.answer(t)
	flushed := make(flushNotice, 1)
	w := batch.New(f.store, batch.Options{Interval: interval, Metrics: flushed})
	pieces := []string{"The photo", "synth", "esis of chloro", "plasts is extra", "ordin", "ary; 数据", "库存储", "聊天记录 done"}
	checkpoints := 0
	for _, p := range pieces {
		before := f.store.Writes().ByMethod["ApplyMessageUpdates"]
		w.Append(m.ID, p)
		if !strings.ContainsFunc(p, unicode.IsSpace) {
			continue // a checkpoint may run or not: it has nothing whole to write
		}
		giveUp := time.After(10 * time.Second) // thousands of intervals
		for f.store.Writes().ByMethod["ApplyMessageUpdates"] == before {
			select {
			case <-flushed:
			case <-giveUp:
				t.Fatalf("no checkpoint wrote %q", p)
			}
		}
		checkpoints++
	}
	final := done(m.ID, len(pieces))
	must(t, "Finish", w.Finish(ctx, final))
	must(t, "Close", w.Close(ctx))
	if c := f.store.Writes(); c.ByMethod["ApplyMessageUpdates"] < int64(checkpoints)+1 {
		t.Errorf("want %d checkpoints and the final update, got %+v", checkpoints, c)
	}
	f.check(t, m.ID, strings.Join(pieces, ""), final)
	for _, word := range []string{"photosynthesis", "chloroplasts", "extraordinary", "数据库存储聊天记录"} {
		page, err := f.store.ListConversations(ctx, f.conv.OwnerID, persistence.ListQuery{Search: word})
		must(t, "ListConversations", err)
		if len(page.Conversations) != 1 || page.Conversations[0].ID != f.conv.ID {
			t.Errorf("search %q found %d conversations, want the one", word, len(page.Conversations))
		}
	}
}

// flushNotice is a batch.Metrics telling of each bulk write, without
// blocking the Writer (one notice pending at most).
type flushNotice chan struct{}

// Flushed implements batch.Metrics.
func (n flushNotice) Flushed(int, time.Duration, error) {
	select {
	case n <- struct{}{}:
	default:
	}
}

// testConcurrentAnswers: answers streaming at once share bulk writes.
func testConcurrentAnswers(t *testing.T, open openStore) {
	const answers, tokens, interval = 20, 1_000, 40 * time.Millisecond
	ctx := ctxFor(t)
	f := newFixture(t, open)
	ids := make([]string, answers)
	for i := range ids {
		ids[i] = f.answer(t).ID
	}
	w := batch.New(f.store, batch.Options{Interval: interval})
	f.store.Reset()
	pieces, text := words(tokens)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, answers)
	for _, id := range ids {
		wg.Go(func() {
			pace(pieces, 8*interval, func(p string) { w.Append(id, p) })
			errs <- w.Finish(ctx, done(id, tokens))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("writer stats: %+v", w.Stats())
	must(t, "Close", w.Close(ctx))
	close(errs)
	for err := range errs {
		must(t, "Finish", err)
	}
	c := f.store.Writes()
	bound := int64(elapsed/interval) + 2 + answers // checkpoints shared by all, finals at worst one each
	t.Logf("%d answers x %d tokens over %v: %d store writes (%d updates), bound %d",
		answers, tokens, elapsed.Round(time.Millisecond), c.Writes, c.MessageUpdates, bound)
	if c.Writes > bound {
		t.Errorf("%d writes, want at most %d", c.Writes, bound)
	}
	for _, id := range ids {
		f.check(t, id, text, done(id, tokens))
	}
}

// words returns n pieces of text (some ending inside a word, as model tokens
// do) and their concatenation.
func words(n int) ([]string, string) {
	out := make([]string, n)
	for i := range out {
		switch i % 4 {
		case 0:
			out[i] = "lorem"
		case 1:
			out[i] = fmt.Sprintf("ipsum%d ", i)
		case 2:
			out[i] = "dolor, "
		default:
			out[i] = "sit\n"
		}
	}
	return out, strings.Join(out, "")
}

// pace calls emit with each piece, spread over about d.
func pace(pieces []string, d time.Duration, emit func(string)) {
	const steps = 20
	per := (len(pieces) + steps - 1) / steps
	for i := 0; i < len(pieces); i += per {
		for _, p := range pieces[i:min(i+per, len(pieces))] {
			emit(p)
		}
		time.Sleep(d / steps)
	}
}

// done is the final update of an answer of n tokens.
func done(id string, n int) persistence.MessageUpdate {
	return persistence.MessageUpdate{ID: id, Status: persistence.StatusComplete, FinishReason: "stop",
		Usage: &persistence.Usage{PromptTokens: 12, CompletionTokens: n, TotalTokens: 12 + n}}
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
