package sqlite

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"modernc.org/sqlite"

	"chatd/persistence"
)

// pagesFetched runs read on a store whose read pool has one connection
// and returns how many pages that connection fetched from its cache or
// the file meanwhile (SQLite's cache hits and misses): a deterministic
// measure of a read's work, however fast the machine.
func pagesFetched(t *testing.T, s *Store, read func()) int {
	t.Helper()
	if n := s.r.Stats().MaxOpenConnections; n != 1 {
		t.Fatalf("the read pool has %d connections, want 1", n)
	}
	status := func(reset bool) int {
		c, err := s.r.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		total := 0
		err = c.Raw(func(dc any) error {
			for _, op := range []sqlite.DBStatusOp{sqlite.DBStatusCacheHit, sqlite.DBStatusCacheMiss} {
				n, _, err := dc.(sqlite.DBStatus).Status(op, reset)
				if err != nil {
					return err
				}
				total += n
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	status(true)
	read()
	return status(false)
}

// streamInChunks appends text to the streaming answer as checkpoints of
// chunk bytes each (the last one shorter), many to a batch; each becomes
// one chunk row.
func streamInChunks(t testing.TB, f chunkFixture, i int, text string, chunk int) {
	t.Helper()
	var ups []persistence.MessageUpdate
	for len(text) > 0 {
		n := min(chunk, len(text))
		ups = append(ups, persistence.MessageUpdate{ID: f.answers[i].ID, Append: text[:n], AppendReasoning: text[:n]})
		text = text[n:]
		if len(ups) == 200 || len(text) == 0 {
			f.apply(t, ups...)
			ups = ups[:0]
		}
	}
}

// readAll reads a text of answer i through read and returns it whole and
// the number of pieces it came in, failing the test on a piece that is
// empty, longer than persistence.ContentPieceBytes or cuts a character
// (the texts read are valid UTF-8).
func readAll(t testing.TB, f chunkFixture, i int, read func(ctx context.Context, owner, id string, fn func(string) error) error) (string, int) {
	t.Helper()
	var b strings.Builder
	pieces := 0
	err := read(context.Background(), f.user.ID, f.answers[i].ID, func(p string) error {
		pieces++
		if p == "" || len(p) > persistence.ContentPieceBytes || !utf8.ValidString(p) {
			t.Fatalf("piece %d: %d bytes, valid UTF-8 %v", pieces, len(p), utf8.ValidString(p))
		}
		b.WriteString(p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), pieces
}

// TestReadStreamingTextLinear: reading a streaming answer's text or
// reasoning in pieces fetches about the pages the text fills, not the
// whole text once per piece (each piece joined every chunk again, so an
// export's work grew with the square of the answer).
func TestReadStreamingTextLinear(t *testing.T) {
	t.Parallel()
	const word, chunk = "word é 世界 🙂 ", 1000
	text := strings.Repeat(word, 12*persistence.ContentPieceBytes/len(word)) // 12 pieces
	size := len(text)
	s := openTest(t, Options{ReadConns: 1, IndexQuiet: -1})
	f := newChunkFixture(t, s, 1)
	streamInChunks(t, f, 0, text, chunk)
	textPages := 2 * size / 4096 // text and reasoning both fill the chunks
	for _, r := range []struct {
		name string
		read func(ctx context.Context, owner, id string, fn func(string) error) error
	}{{"ReadContent", s.ReadContent}, {"ReadReasoning", s.ReadReasoning}} {
		var got string
		var pieces int
		pages := pagesFetched(t, s, func() { got, pieces = readAll(t, f, 0, r.read) })
		t.Logf("%s of %d bytes in %d chunks: %d pieces, %d pages fetched; the chunks fill about %d",
			r.name, size, size/chunk, pieces, pages, textPages)
		if got != text {
			t.Fatalf("%s gave %d bytes, not the %d streamed", r.name, len(got), size)
		}
		if pages > 3*textPages {
			t.Fatalf("%s fetched %d pages for a text whose chunks fill about %d", r.name, pages, textPages)
		}
	}
}

// textReadsOf are the two reads of a text in pieces, each with the
// update that appends to its text.
var textReadsOf = []struct {
	name   string
	read   func(s *Store) func(ctx context.Context, owner, id string, fn func(string) error) error
	append func(id, text string) persistence.MessageUpdate
}{
	{"ReadContent", func(s *Store) func(context.Context, string, string, func(string) error) error { return s.ReadContent },
		func(id, text string) persistence.MessageUpdate {
			return persistence.MessageUpdate{ID: id, Append: text}
		}},
	{"ReadReasoning", func(s *Store) func(context.Context, string, string, func(string) error) error { return s.ReadReasoning },
		func(id, text string) persistence.MessageUpdate {
			return persistence.MessageUpdate{ID: id, AppendReasoning: text}
		}},
}

// TestReadStreamingTextExact: a streaming answer's text and reasoning,
// read in pieces, are byte for byte what was streamed, when characters
// (2, 3 and 4 bytes long) are cut across checkpoints, across pieces (the
// text puts a character across every piece boundary) and across the row's
// part and the first chunk after it; with many small chunks, chunks larger
// than a piece, and a row that took in the first chunks mid-stream (a
// usage update that does not end the answer). Every piece is whole
// characters, at most persistence.ContentPieceBytes long.
func TestReadStreamingTextExact(t *testing.T) {
	t.Parallel()
	// 9 bytes a group, and 2^18 = 9*29127 + 1: byte ContentPieceBytes
	// (and the next boundaries, within 3 bytes) falls inside a character.
	const group = "é🙂世"
	text := strings.Repeat(group, 3*persistence.ContentPieceBytes/len(group)+100)
	cases := []struct {
		name  string
		sizes []int // checkpoint sizes in bytes, used in turn
		fold  int   // after this many bytes, a usage update folds the chunks into the row (0: none)
	}{
		{"many small chunks", []int{1, 700, 2, 1999, 3, 37}, 0},
		{"chunks larger than a piece", []int{persistence.ContentPieceBytes + 5, 11, 2*persistence.ContentPieceBytes - 1}, 0},
		{"row then chunks", []int{5000, 3, 2501}, persistence.ContentPieceBytes + 2},
		{"row only", []int{100000}, len(text)},
	}
	for _, tc := range cases {
		for _, r := range textReadsOf {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				s := openTest(t, Options{IndexQuiet: -1})
				f := newChunkFixture(t, s, 1)
				id := f.answers[0].ID
				var ups []persistence.MessageUpdate
				for at, i := 0, 0; at < len(text); i++ {
					n := min(tc.sizes[i%len(tc.sizes)], len(text)-at)
					if at < tc.fold && at+n > tc.fold {
						n = tc.fold - at // the row's part ends where the case says
					}
					ups = append(ups, r.append(id, text[at:at+n]))
					if at += n; at == tc.fold {
						f.apply(t, ups...)
						ups = ups[:0]
						f.apply(t, persistence.MessageUpdate{ID: id, Usage: &persistence.Usage{TotalTokens: 1}})
					}
				}
				if len(ups) > 0 {
					f.apply(t, ups...)
				}
				got, pieces := readAll(t, f, 0, r.read(s))
				if got != text {
					at := 0
					for at < min(len(got), len(text)) && got[at] == text[at] {
						at++
					}
					t.Fatalf("read %d bytes in %d pieces, want %d; they differ from byte %d", len(got), pieces, len(text), at)
				}
				if want := len(text)/persistence.ContentPieceBytes + 1; pieces != want {
					t.Fatalf("%d bytes came in %d pieces, want %d", len(text), pieces, want)
				}
				m := f.message(t, 0)
				if m.Status != persistence.StatusStreaming {
					t.Fatalf("the answer is %s, want it streaming", m.Status)
				}
			})
		}
	}
}

// TestReadTextAnswerEndsMidRead: an answer that ends while its text is
// read in pieces (its row takes in its chunks and they are deleted, with
// the final update's own text) is read on from its row: the text as it
// stood when the read began, whole, then nothing of what came after.
func TestReadTextAnswerEndsMidRead(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("Grüße 世界 🙂 ", 3*persistence.ContentPieceBytes/20)
	for _, r := range textReadsOf {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			s := openTest(t, Options{IndexQuiet: -1})
			f := newChunkFixture(t, s, 1)
			id := f.answers[0].ID
			var ups []persistence.MessageUpdate
			for _, p := range splitText(rand.New(rand.NewPCG(7, 8)), text, 500) {
				ups = append(ups, r.append(id, p))
			}
			f.apply(t, ups...)
			var b strings.Builder
			pieces := 0
			err := r.read(s)(context.Background(), f.user.ID, id, func(p string) error {
				if pieces++; pieces == 1 {
					f.apply(t, r.append(id, " more"))
					end := r.append(id, " the end")
					end.Status, end.FinishReason = persistence.StatusComplete, "stop"
					f.apply(t, end)
				}
				b.WriteString(p)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != text || pieces < 3 {
				t.Fatalf("read %d bytes in %d pieces, want the %d there were at the start", b.Len(), pieces, len(text))
			}
			if n := count(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
				t.Fatalf("%d chunks left: the answer did not end mid-read", n)
			}
		})
	}
}

// BenchmarkReadStreamingText reads a streaming answer's text of 3 MiB,
// streamed in 1,000-byte checkpoints, in pieces, as an export does.
//
//	go test -run '^$' -bench ReadStreamingText -count 6 ./persistence/sqlite/
func BenchmarkReadStreamingText(b *testing.B) {
	s, ctx := benchStore(b, Options{IndexQuiet: -1})
	f := newChunkFixture(b, s, 1)
	text := strings.Repeat("word é 世界 🙂 ", 12*persistence.ContentPieceBytes/20)
	streamInChunks(b, f, 0, text, 1000)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.ReadContent(ctx, f.user.ID, f.answers[0].ID, func(p string) error { n += len(p); return nil })
		if err != nil || n != len(text) {
			b.Fatalf("read %d of %d bytes, %v", n, len(text), err)
		}
	}
}
