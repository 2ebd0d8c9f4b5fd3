package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// BenchOptions sizes the data set RunBenchmarksWith fills. Zero fields take
// the documented defaults.
type BenchOptions struct {
	// Users is the number of accounts; it defaults to 20.
	Users int
	// Conversations is the total number of conversations, spread evenly
	// over the users; it defaults to 2,000.
	Conversations int
	// Messages is the total number of messages, spread evenly over the
	// conversations; it defaults to 50,000.
	Messages int
	// MessageBytes is the approximate size of each message's text; it
	// defaults to 1,024.
	MessageBytes int
	// FillWorkers is how many goroutines fill the store (each owns whole
	// conversations, so message order stays natural); it defaults to 4.
	FillWorkers int
}

func (o BenchOptions) withDefaults() BenchOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Users, 20)
	def(&o.Conversations, 2000)
	def(&o.Messages, 50000)
	def(&o.MessageBytes, 1024)
	def(&o.FillWorkers, 4)
	return o
}

// RunBenchmarks fills one store from open with the default data set (20
// users, 2,000 conversations, 50,000 messages of about 1 KB) and runs the
// sub-benchmarks against it:
//
//   - ListFirstPage: a user's first page of 30 conversations.
//   - LoadConversation: every message of one conversation (25).
//   - SearchRare / SearchMiss: a user's first page of conversations whose
//     text contains a rare word / a word that appears nowhere (the worst
//     case: every message of the user is examined).
//   - InsertMessage: a new 1 KB message in an existing conversation.
//   - AppendStreaming: ApplyMessageUpdates with one Append of a token to a
//     streaming message (rotated every 400 appends, as answers end).
//   - AppendBatch50: ApplyMessageUpdates with 50 appends to 50 streaming
//     messages at once, as the batching writer sends under load; it also
//     reports ns/update.
//
// The fill runs once per call; all sub-benchmarks share it (run with
// -count=1, and use -benchtime to trade time for precision). The store is
// closed at the end; open registers any other cleanup itself.
func RunBenchmarks(b *testing.B, open func(b *testing.B) persistence.Store) {
	RunBenchmarksWith(b, open, BenchOptions{})
}

// RunBenchmarksWith is RunBenchmarks with a custom data set size.
func RunBenchmarksWith(b *testing.B, open func(b *testing.B) persistence.Store, opts BenchOptions) {
	opts = opts.withDefaults()
	s := open(b)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	start := time.Now()
	d, err := Fill(context.Background(), s, opts)
	if err != nil {
		b.Fatalf("fill: %v", err)
	}
	b.Logf("filled %d users, %d conversations, %d messages of ~%d bytes in %v",
		len(d.Users), len(d.Conversations), d.Messages, opts.MessageBytes, time.Since(start).Round(time.Millisecond))

	b.Run("ListFirstPage", func(b *testing.B) { benchList(b, s, d) })
	b.Run("LoadConversation", func(b *testing.B) { benchLoad(b, s, d) })
	b.Run("SearchRare", func(b *testing.B) { benchSearch(b, s, d, RareWord, true) })
	b.Run("SearchMiss", func(b *testing.B) { benchSearch(b, s, d, "no-such-word", false) })
	b.Run("InsertMessage", func(b *testing.B) { benchInsert(b, s, d, opts.MessageBytes) })
	b.Run("AppendStreaming", func(b *testing.B) { benchAppend(b, s, d) })
	b.Run("AppendBatch50", func(b *testing.B) { benchAppendBatch(b, s, d, 50) })
}

// RareWord appears in about one message in a hundred.
const RareWord = "zanzibar"

// Dataset is what Fill created.
type Dataset struct {
	Users           []persistence.User
	Conversations   []persistence.Conversation // round-robin over Users
	PerConversation int                        // messages in each conversation
	Messages        int                        // in all
}

// Fill creates the data set o describes in s through the normal Store API
// (users, then conversations round-robin over them, then alternating user
// and assistant messages of about o.MessageBytes each, one text in a
// hundred holding RareWord). The benchmarks here and the data-growth
// scenario of the bench command share it.
func Fill(ctx context.Context, s persistence.Store, o BenchOptions) (Dataset, error) {
	o = o.withDefaults()
	d := Dataset{PerConversation: max(o.Messages/o.Conversations, 1)}
	for i := range o.Users {
		u := persistence.User{Email: fmt.Sprintf("bench%d@example.test", i), Name: fmt.Sprintf("Bench %d", i), PasswordHash: "x"}
		if err := s.CreateUser(ctx, &u); err != nil {
			return d, err
		}
		d.Users = append(d.Users, u)
	}
	for i := range o.Conversations {
		c := persistence.Conversation{OwnerID: d.Users[i%o.Users].ID, Title: fmt.Sprintf("Conversation %d about things", i), Model: "bench"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			return d, err
		}
		d.Conversations = append(d.Conversations, c)
	}
	var wg sync.WaitGroup
	errs := make([]error, o.FillWorkers)
	for w := range o.FillWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := w; i < len(d.Conversations); i += o.FillWorkers {
				if errs[w] = fillConv(ctx, s, d.Conversations[i], d.PerConversation, o.MessageBytes, r); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return d, err
		}
	}
	d.Messages = d.PerConversation * len(d.Conversations)
	return d, nil
}

// fillConv inserts n alternating user/assistant messages into c.
func fillConv(ctx context.Context, s persistence.Store, c persistence.Conversation, n, size int, r *rand.Rand) error {
	parent := ""
	for k := range n {
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, ParentID: parent,
			Role: persistence.RoleUser, Content: BenchText(r, size), Status: persistence.StatusComplete}
		if k%2 == 1 {
			m.Role, m.Model = persistence.RoleAssistant, "bench"
			m.Usage = &persistence.Usage{PromptTokens: 100, CompletionTokens: 200, TotalTokens: 300}
		}
		if err := s.InsertMessage(ctx, &m); err != nil {
			return err
		}
		parent = m.ID
	}
	return nil
}

var benchWords = strings.Fields(`the quick brown fox jumps over lazy dog model answer stream token
	context window latency budget server client socket message conversation search index
	golang sqlite mongo database vector prompt system user assistant reply history cache`)

// BenchText returns about size bytes of words; one text in a hundred holds RareWord.
func BenchText(r *rand.Rand, size int) string {
	var sb strings.Builder
	sb.Grow(size + 16)
	if r.IntN(100) == 0 {
		sb.WriteString(RareWord + " ")
	}
	for sb.Len() < size {
		sb.WriteString(benchWords[r.IntN(len(benchWords))])
		sb.WriteByte(' ')
	}
	return sb.String()
}

func benchList(b *testing.B, s persistence.Store, d Dataset) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := d.Users[i%len(d.Users)]
		p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 30})
		if err != nil || len(p.Conversations) != min(30, len(d.Conversations)/len(d.Users)) {
			b.Fatalf("list: %d conversations, %v", len(p.Conversations), err)
		}
	}
}

func benchLoad(b *testing.B, s persistence.Store, d Dataset) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := d.Conversations[(i*7919)%len(d.Conversations)]
		ms, err := s.Messages(ctx, c.OwnerID, c.ID)
		if err != nil || len(ms) != d.PerConversation {
			b.Fatalf("load: %d messages, %v", len(ms), err)
		}
	}
}

func benchSearch(b *testing.B, s persistence.Store, d Dataset, word string, wantHits bool) {
	ctx := context.Background()
	b.ReportAllocs()
	hits := 0
	for i := 0; b.Loop(); i++ {
		u := d.Users[i%len(d.Users)]
		p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 30, Search: word})
		if err != nil {
			b.Fatalf("search: %v", err)
		}
		hits += len(p.Conversations)
	}
	if (hits > 0) != wantHits {
		b.Fatalf("search %q found %d conversations in total", word, hits)
	}
}

func benchInsert(b *testing.B, s persistence.Store, d Dataset, size int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = BenchText(r, size)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := d.Conversations[(i*104729)%len(d.Conversations)]
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
			Content: texts[i%len(texts)], Status: persistence.StatusComplete}
		if err := s.InsertMessage(ctx, &m); err != nil {
			b.Fatalf("insert: %v", err)
		}
	}
}

func benchAppend(b *testing.B, s persistence.Store, d Dataset) {
	ctx := context.Background()
	const perAnswer = 400
	var cur persistence.Message
	newAnswer := func(i int) {
		c := d.Conversations[i%len(d.Conversations)]
		cur = persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleAssistant,
			Model: "bench", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &cur); err != nil {
			b.Fatalf("insert streaming: %v", err)
		}
	}
	newAnswer(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%perAnswer == 0 {
			b.StopTimer()
			newAnswer(i / perAnswer)
			b.StartTimer()
		}
		up := persistence.MessageUpdate{ID: cur.ID, Append: " token-ish text", At: time.Now()}
		if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{up}); err != nil {
			b.Fatalf("append: %v", err)
		}
	}
}

func benchAppendBatch(b *testing.B, s persistence.Store, d Dataset, n int) {
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		c := d.Conversations[(i*31)%len(d.Conversations)]
		m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleAssistant,
			Model: "bench", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &m); err != nil {
			b.Fatalf("insert streaming: %v", err)
		}
		ids[i] = m.ID
	}
	ups := make([]persistence.MessageUpdate, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%200 == 0 { // keep answers at a realistic size
			b.StopTimer()
			for k, id := range ids {
				ups[k] = persistence.MessageUpdate{ID: id, Status: persistence.StatusComplete, At: time.Now()}
			}
			if _, err := s.ApplyMessageUpdates(ctx, ups); err != nil {
				b.Fatalf("complete: %v", err)
			}
			for k := range ids {
				c := d.Conversations[(i+k*31)%len(d.Conversations)]
				m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleAssistant,
					Model: "bench", Status: persistence.StatusStreaming}
				if err := s.InsertMessage(ctx, &m); err != nil {
					b.Fatalf("insert streaming: %v", err)
				}
				ids[k] = m.ID
			}
			b.StartTimer()
		}
		at := time.Now()
		for k, id := range ids {
			ups[k] = persistence.MessageUpdate{ID: id, Append: " token-ish text", At: at}
		}
		if _, err := s.ApplyMessageUpdates(ctx, ups); err != nil {
			b.Fatalf("append batch: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/update")
}
