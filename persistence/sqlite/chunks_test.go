package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// chunkFixture is a user with conversations, each holding a question and
// a streaming answer.
type chunkFixture struct {
	s       *Store
	user    persistence.User
	convs   []persistence.Conversation
	answers []persistence.Message
}

func newChunkFixture(t testing.TB, s *Store, n int) chunkFixture {
	t.Helper()
	ctx := context.Background()
	f := chunkFixture{s: s, user: persistence.User{Email: "chunks@example.test", Name: "C", PasswordHash: "x"}}
	if err := s.CreateUser(ctx, &f.user); err != nil {
		t.Fatal(err)
	}
	for range n {
		c := persistence.Conversation{OwnerID: f.user.ID, Title: "t", Model: "m"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
		q := persistence.Message{ConversationID: c.ID, OwnerID: f.user.ID, Role: persistence.RoleUser,
			Content: "question", Status: persistence.StatusComplete}
		a := persistence.Message{ConversationID: c.ID, OwnerID: f.user.ID, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		if err := s.InsertMessages(ctx, &q, &a); err != nil {
			t.Fatal(err)
		}
		f.convs, f.answers = append(f.convs, c), append(f.answers, a)
	}
	return f
}

// apply writes one batch; every update must apply.
func (f chunkFixture) apply(t testing.TB, ups ...persistence.MessageUpdate) {
	t.Helper()
	skipped, err := f.s.ApplyMessageUpdates(context.Background(), ups)
	if err != nil || skipped != nil {
		t.Fatalf("ApplyMessageUpdates: skipped %v, %v", skipped, err)
	}
}

// message reads answer i.
func (f chunkFixture) message(t testing.TB, i int) persistence.Message {
	t.Helper()
	m, err := f.s.Message(context.Background(), f.user.ID, f.answers[i].ID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// count returns the result of a count(*) query on the writer (which sees
// temp tables).
func count(t testing.TB, s *Store, q string) int {
	t.Helper()
	var n int
	if err := s.w.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// countQueued makes the writer's connection record every message the
// search queue's triggers queue, in temp.queued.
func countQueued(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{`CREATE TEMP TABLE queued (msg INTEGER NOT NULL)`,
		`CREATE TEMP TRIGGER count_queued AFTER INSERT ON main.search_pending BEGIN
			INSERT INTO queued (msg) VALUES (new.msg); END`} {
		if _, err := s.w.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// splitText cuts text into n pieces at random byte offsets (inside
// multi-byte characters too).
func splitText(r *rand.Rand, text string, n int) []string {
	cuts := []int{0}
	for range n - 1 {
		cuts = append(cuts, r.IntN(len(text)+1))
	}
	cuts = append(cuts, len(text))
	for i := 1; i < len(cuts); i++ { // insertion sort: n is small
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = text[cuts[i]:cuts[i+1]]
	}
	return pieces
}

// streamText is multi-byte text: 2-, 3- and 4-byte characters among ASCII.
var streamText = strings.Repeat("Grüße, 世界! Ünïcödé 🙂🚀 text zanzibar-ok ", 60)

// TestChunksReadAsTheRow: a streaming answer's checkpoints are chunks,
// not row rewrites, and every read sees the text (split at random bytes,
// characters cut across checkpoints), the reasoning and the updated_at the
// row would have had: a message, the conversation's messages, a page, the
// outline, the text and reasoning read in pieces from a byte offset, and search (through
// the index query and the short-query scan).
func TestChunksReadAsTheRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, Options{IndexQuiet: -1})
	f := newChunkFixture(t, s, 1)
	id := f.answers[0].ID
	r := rand.New(rand.NewPCG(1, 2))
	texts := splitText(r, streamText, 80)
	thoughts := splitText(r, strings.ToUpper(streamText[:900]), 80)
	at := f.answers[0].UpdatedAt
	var content, reasoning string
	for i := range texts {
		u := persistence.MessageUpdate{ID: id, Append: texts[i], AppendReasoning: thoughts[i]}
		if i%7 != 3 { // some checkpoints carry no At: updated_at stays
			at = at.Add(time.Duration(1+r.IntN(1000)) * time.Microsecond)
			u.At = at
		}
		if u.Append == "" && u.AppendReasoning == "" {
			u.Append = "x" // a checkpoint always carries text
		}
		content, reasoning = content+u.Append, reasoning+u.AppendReasoning
		f.apply(t, u)

		m := f.message(t, 0)
		if m.Content != content || m.Reasoning != reasoning || !m.UpdatedAt.Equal(at) || m.Status != persistence.StatusStreaming {
			t.Fatalf("after checkpoint %d: content %q (want %q), reasoning %q (want %q), updated %v (want %v), status %s",
				i, ending(m.Content), ending(content), ending(m.Reasoning), ending(reasoning), m.UpdatedAt, at, m.Status)
		}
		if i%10 != 9 {
			continue
		}
		ms, err := s.Messages(ctx, f.user.ID, f.convs[0].ID)
		if err != nil || len(ms) != 2 || ms[1] != m {
			t.Fatalf("Messages after checkpoint %d: %+v, %v", i, ms, err)
		}
		page, err := s.MessagePage(ctx, f.user.ID, f.convs[0].ID, persistence.PageQuery{Limit: 5})
		if err != nil || len(page.Messages) != 2 || page.Messages[1] != m {
			t.Fatalf("MessagePage after checkpoint %d: %+v, %v", i, page, err)
		}
		outline, err := s.MessageOutline(ctx, f.user.ID, f.convs[0].ID)
		m.Content, m.Reasoning = "", ""
		if err != nil || len(outline) != 2 || outline[1] != m {
			t.Fatalf("MessageOutline after checkpoint %d: %+v, %v", i, outline, err)
		}
		var read strings.Builder
		if err := s.ReadContent(ctx, f.user.ID, id, func(p string) error { read.WriteString(p); return nil }); err != nil || read.String() != content {
			t.Fatalf("ReadContent after checkpoint %d: %q, %v", i, ending(read.String()), err)
		}
		read.Reset()
		if err := s.ReadReasoning(ctx, f.user.ID, id, func(p string) error { read.WriteString(p); return nil }); err != nil || read.String() != reasoning {
			t.Fatalf("ReadReasoning after checkpoint %d: %q, %v", i, ending(read.String()), err)
		}
	}
	if got := count(t, s, `SELECT count(*) FROM message_chunks`); got != len(texts) {
		t.Fatalf("%d chunks stored for %d checkpoints", got, len(texts))
	}
	fx := searchFixture{s: s, user: f.user, conv: f.convs[0]}
	for _, q := range []string{"ZANZIBAR-OK", "🚀", "grüße, 世界"} {
		if !fx.found(t, q) {
			t.Errorf("search %q does not find the streaming answer", q)
		}
	}
	if fx.found(t, "not-in-there") {
		t.Error("search for a missing word finds the streaming answer")
	}
}

// tail is the end of a long text, for messages.
func ending(s string) string {
	if len(s) > 40 {
		return "..." + s[len(s)-40:]
	}
	return s
}

// TestChunksFoldWhenAnswerEnds: however a streaming answer ends, its row
// takes in its chunks in order, with the last text, and they are deleted
// in the same transaction; the search queue's trigger fires once (not at
// checkpoints), and the index then finds text that only chunks held.
func TestChunksFoldWhenAnswerEnds(t *testing.T) {
	t.Parallel()
	// What updated_at becomes.
	const (
		atGiven      = iota // the At the end was given
		atCheckpoint        // the last checkpoint's At
		atClock             // the store's clock, later than the checkpoints
	)
	cases := []struct {
		name   string
		end    func(t *testing.T, f chunkFixture, at time.Time) // ends answer 0
		last   string                                           // text the end appends
		status persistence.Status
		at     int
		queued int // messages the end queues for the index
	}{
		{"final update", func(t *testing.T, f chunkFixture, at time.Time) {
			f.apply(t, persistence.MessageUpdate{ID: f.answers[0].ID, Append: " end", AppendReasoning: "!",
				Status: persistence.StatusComplete, FinishReason: "stop", At: at})
		}, " end", persistence.StatusComplete, atGiven, 1},
		{"final update without At", func(t *testing.T, f chunkFixture, _ time.Time) {
			f.apply(t, persistence.MessageUpdate{ID: f.answers[0].ID, Status: persistence.StatusError, Error: "boom"})
		}, "", persistence.StatusError, atCheckpoint, 1},
		{"interrupt one", func(t *testing.T, f chunkFixture, at time.Time) {
			m, err := f.s.InterruptMessage(context.Background(), f.user.ID, f.answers[0].ID, "lease lost", at)
			if err != nil || m.Status != persistence.StatusInterrupted || !strings.HasSuffix(m.Content, "zanzibar-ok ") {
				t.Fatalf("InterruptMessage: %+v, %v", m, err)
			}
		}, "", persistence.StatusInterrupted, atGiven, 1},
		{"interrupt all", func(t *testing.T, f chunkFixture, _ time.Time) {
			if n, err := f.s.InterruptStreaming(context.Background()); err != nil || n != 2 {
				t.Fatalf("InterruptStreaming: %d, %v", n, err)
			}
		}, "", persistence.StatusInterrupted, atClock, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTest(t, Options{IndexQuiet: -1})
			f := newChunkFixture(t, s, 2)
			countQueued(t, s) // from here on
			r := rand.New(rand.NewPCG(3, 4))
			texts, thoughts := splitText(r, streamText, 30), splitText(r, streamText[:300], 30)
			at := f.answers[0].UpdatedAt.Add(-time.Hour) // before the store's clock
			for i := range texts {
				at = at.Add(time.Millisecond)
				f.apply(t, persistence.MessageUpdate{ID: f.answers[0].ID, Append: texts[i], AppendReasoning: thoughts[i], At: at},
					persistence.MessageUpdate{ID: f.answers[1].ID, Append: "other ", At: at})
			}
			if n := count(t, s, `SELECT count(*) FROM temp.queued`); n != 0 {
				t.Fatalf("checkpoints queued %d messages for the index", n)
			}
			end := at.Add(time.Second)
			tc.end(t, f, end)
			m := f.message(t, 0)
			okAt := map[int]bool{atGiven: m.UpdatedAt.Equal(end), atCheckpoint: m.UpdatedAt.Equal(at),
				atClock: m.UpdatedAt.After(at)}[tc.at]
			if m.Content != streamText+tc.last || !strings.HasPrefix(m.Reasoning, streamText[:300]) ||
				m.Status != tc.status || !okAt {
				t.Fatalf("ended answer: content %q, reasoning %q, status %s, updated %v (checkpoint %v, end %v)",
					ending(m.Content), ending(m.Reasoning), m.Status, m.UpdatedAt, at, end)
			}
			var mine int
			if err := s.w.QueryRowContext(context.Background(), `SELECT count(*) FROM message_chunks
				WHERE msg = (SELECT rowid FROM messages WHERE id = ?)`, f.answers[0].ID).Scan(&mine); err != nil || mine != 0 {
				t.Fatalf("%d chunks left of the ended answer, %v", mine, err)
			}
			if n := count(t, s, `SELECT count(*) FROM temp.queued`); n != tc.queued {
				t.Fatalf("ending queued %d messages for the index", n)
			}
			waitIndexed(t, s)
			var hits int
			if err := s.r.QueryRowContext(context.Background(), `SELECT count(*) FROM search.message_fts
				WHERE message_fts MATCH ?`, ftsTrigrams("zanzibar-ok")).Scan(&hits); err != nil || hits != 1 {
				t.Fatalf("the index holds the folded text %d times, %v", hits, err)
			}
		})
	}
}

// TestChunksFoldedAtStart: answers left streaming with chunks by a server
// that stopped without ending them (a crash: nothing folds them on the
// way down) are folded and marked interrupted by the start-up sweep, every
// byte in order, and no chunk is left.
func TestChunksFoldedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f := newChunkFixture(t, s, 3)
	r := rand.New(rand.NewPCG(5, 6))
	want := make([]string, len(f.answers))
	for _, piece := range splitText(r, streamText, 40) {
		var ups []persistence.MessageUpdate
		for i, a := range f.answers {
			p := fmt.Sprint(i) + piece
			want[i] += p
			ups = append(ups, persistence.MessageUpdate{ID: a.ID, Append: p, AppendReasoning: p[:1], At: time.Now()})
		}
		f.apply(t, ups...)
	}
	if err := s.Close(ctx); err != nil { // the rows still stream, their text in chunks
		t.Fatal(err)
	}

	s = openTest(t, Options{Path: path})
	if n := count(t, s, `SELECT count(*) FROM message_chunks`); n != 40*len(f.answers) {
		t.Fatalf("%d chunks on disk before the sweep", n)
	}
	f.s = s
	if n, err := s.InterruptStreaming(ctx); err != nil || n != len(f.answers) {
		t.Fatalf("InterruptStreaming: %d, %v", n, err)
	}
	for i := range f.answers {
		m := f.message(t, i)
		if m.Content != want[i] || len(m.Reasoning) != 40 || m.Status != persistence.StatusInterrupted {
			t.Fatalf("answer %d after the sweep: %q, reasoning %q, %s", i, ending(m.Content), m.Reasoning, m.Status)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
		t.Fatalf("%d chunks left after the sweep", n)
	}
}

// TestChunksGoWithTheirMessage: deleting a conversation deletes its
// streaming answer's chunks, and a later message that takes the deleted
// row's rowid does not inherit them.
func TestChunksGoWithTheirMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, Options{})
	f := newChunkFixture(t, s, 1)
	f.apply(t, persistence.MessageUpdate{ID: f.answers[0].ID, Append: "orphan text", At: time.Now()})
	var rowid int64
	if err := s.w.QueryRowContext(ctx, `SELECT rowid FROM messages WHERE id = ?`, f.answers[0].ID).Scan(&rowid); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConversation(ctx, f.user.ID, f.convs[0].ID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
		t.Fatalf("%d chunks left after deleting the conversation", n)
	}
	c := persistence.Conversation{OwnerID: f.user.ID, Model: "m"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	q := persistence.Message{ConversationID: c.ID, OwnerID: f.user.ID, Role: persistence.RoleUser, Content: "q", Status: persistence.StatusComplete}
	a := persistence.Message{ConversationID: c.ID, OwnerID: f.user.ID, Role: persistence.RoleAssistant, Status: persistence.StatusStreaming}
	if err := s.InsertMessages(ctx, &q, &a); err != nil {
		t.Fatal(err)
	}
	var again int64
	if err := s.w.QueryRowContext(ctx, `SELECT rowid FROM messages WHERE id = ?`, a.ID).Scan(&again); err != nil || again != rowid {
		t.Fatalf("the new answer's rowid is %d, the deleted one's %d (%v): the test needs the same", again, rowid, err)
	}
	m, err := s.Message(ctx, f.user.ID, a.ID)
	if err != nil || m.Content != "" {
		t.Fatalf("new answer: %q, %v", m.Content, err)
	}
}

// TestCheckpointWALPages: one checkpoint of 200 streaming answers, each
// with 6 KB of text so far, writes about the pages of its new text to the
// write-ahead log, not a page (or three, with the text's overflow pages)
// per answer as a row rewrite does.
func TestCheckpointWALPages(t *testing.T) {
	t.Parallel()
	const answers, sofar, piece = 200, 6000, 600
	s := openTest(t, Options{CheckpointInterval: -1})
	f := newChunkFixture(t, s, answers)
	ups := make([]persistence.MessageUpdate, answers)
	checkpoint := func() {
		for i, a := range f.answers {
			ups[i] = persistence.MessageUpdate{ID: a.ID, Append: strings.Repeat("x", piece), At: time.Now()}
		}
		f.apply(t, ups...)
	}
	for range sofar / piece {
		checkpoint()
	}
	frames := walFrames(t, s, checkpoint)
	textPages := answers * piece / 4096
	t.Logf("one checkpoint of %d answers (%d bytes each) wrote %d pages to the WAL; its text fills %d",
		answers, piece, frames, textPages)
	if frames > 2*textPages+16 {
		t.Fatalf("one checkpoint of %d answers wrote %d pages to the WAL; its text fills %d", answers, frames, textPages)
	}
	if m := f.message(t, answers-1); len(m.Content) != sofar+piece {
		t.Fatalf("an answer holds %d bytes, want %d", len(m.Content), sofar+piece)
	}
}

// walFrames empties the store's write-ahead log, runs write, and returns
// how many pages the log then holds. The store must have no background
// checkpointer.
func walFrames(t testing.TB, s *Store, write func()) int {
	t.Helper()
	var busy, logPages, done int
	if err := s.w.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil || busy != 0 {
		t.Fatalf("truncate the WAL: busy %d, %v", busy, err)
	}
	write()
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	const header, frame = 32, 24 + 4096
	return int((fi.Size() - header) / frame)
}

// TestChunksFenceUnderConcurrency: checkpoints racing InterruptMessage
// are each either applied (before it) or reported skipped (after it): the
// interrupted answer holds exactly the applied checkpoints' text, in order.
func TestChunksFenceUnderConcurrency(t *testing.T) {
	t.Parallel()
	const answers, checkpoints = 4, 60
	s := openTest(t, Options{})
	f := newChunkFixture(t, s, answers)
	applied := make([]string, answers)
	errs := make(chan error, 2*answers)
	for i, a := range f.answers {
		go func() { // the answer's checkpoints, one after the other
			skippedOnce := false
			for k := range checkpoints {
				piece := fmt.Sprintf("<%d:%d é>", i, k)
				skipped, err := s.ApplyMessageUpdates(context.Background(), []persistence.MessageUpdate{{ID: a.ID, Append: piece, At: time.Now()}})
				switch {
				case err != nil:
					errs <- err
					return
				case skipped == nil && skippedOnce:
					errs <- fmt.Errorf("answer %d: checkpoint %d applied after one was skipped", i, k)
					return
				case skipped == nil:
					applied[i] += piece
				default:
					skippedOnce = true
				}
			}
			errs <- nil
		}()
		go func() { // and its interrupt, racing them
			_, err := s.InterruptMessage(context.Background(), f.user.ID, a.ID, "lease lost", time.Time{})
			errs <- err
		}()
	}
	for range 2 * answers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.answers {
		m := f.message(t, i)
		if m.Status != persistence.StatusInterrupted || m.Content != applied[i] {
			t.Fatalf("answer %d: %s, %q; applied %q", i, m.Status, ending(m.Content), ending(applied[i]))
		}
	}
	if n := count(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
}

// BenchmarkCheckpoints200 measures one checkpoint of 200 streaming
// answers (400 bytes each, about 300 ms of 50 tokens/s with the bench's
// stamps), as the batching writer sends it, and every 27th op also their
// final updates (an answer of 8 s), and reports the write-ahead log's
// bytes per op (the pages SQLite wrote, which its checkpointer then copies
// into the database) and per byte of text. The log is emptied before each
// op, outside the timer; the store runs without a background checkpointer
// so the log holds exactly what the op wrote.
//
//	go test -run '^$' -bench Checkpoints200 -count 6 ./persistence/sqlite/
func BenchmarkCheckpoints200(b *testing.B) {
	const answers, piece, perAnswer = 200, 400, 27
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "chatd.db"),
		Logger: slog.New(slog.DiscardHandler), CheckpointInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	f := newChunkFixture(b, s, answers)
	text := strings.Repeat("token text ", piece/11+1)[:piece]
	ups := make([]persistence.MessageUpdate, answers)
	var wal, textBytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if i > 0 && i%perAnswer == 0 {
			for k := range f.answers { // new answers in the same conversations
				a := persistence.Message{ConversationID: f.convs[k].ID, OwnerID: f.user.ID,
					Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
				if err := s.InsertMessage(context.Background(), &a); err != nil {
					b.Fatal(err)
				}
				f.answers[k] = a
			}
		}
		var busy, logPages, done int
		if err := s.w.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil || busy != 0 {
			b.Fatalf("truncate the WAL: busy %d, %v", busy, err)
		}
		now := time.Now()
		for k, a := range f.answers {
			ups[k] = persistence.MessageUpdate{ID: a.ID, Append: text, At: now}
		}
		b.StartTimer()
		f.apply(b, ups...)
		textBytes += answers * piece
		if i%perAnswer == perAnswer-1 {
			for k, a := range f.answers {
				ups[k] = persistence.MessageUpdate{ID: a.ID, Status: persistence.StatusComplete, FinishReason: "stop", At: now}
			}
			f.apply(b, ups...)
		}
		b.StopTimer()
		fi, err := os.Stat(s.path + "-wal")
		if err != nil {
			b.Fatal(err)
		}
		wal += fi.Size()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(wal)/float64(b.N), "WAL-B/op")
	b.ReportMetric(float64(wal)/float64(textBytes), "WAL-B/text-B")
}
