package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/persistence"
)

// BenchmarkBurstOfSends measures what 250 users sending at the same instant
// cost the store: each creates a conversation and inserts its message and
// the answer's row, all at once. One op is the whole burst.
func BenchmarkBurstOfSends(b *testing.B) {
	s, ctx := benchStore(b, Options{})
	const users = 250
	owners := make([]string, users)
	for i := range owners {
		u := persistence.User{Email: fmt.Sprintf("u%d@example.test", i), Name: "U", PasswordHash: "x"}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		owners[i] = u.ID
	}
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, owner := range owners {
			wg.Go(func() {
				c := persistence.Conversation{OwnerID: owner, Model: "m"}
				if err := s.CreateConversation(ctx, &c); err != nil {
					b.Error(err)
					return
				}
				user := persistence.Message{ConversationID: c.ID, OwnerID: owner, Role: persistence.RoleUser,
					Content: "a question of some length", Status: persistence.StatusComplete}
				if err := s.InsertMessage(ctx, &user); err != nil {
					b.Error(err)
					return
				}
				answer := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: user.ID,
					Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
				if err := s.InsertMessage(ctx, &answer); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

// BenchmarkBurstOfSendRows measures the store's part of 250 sends at the
// same instant into existing conversations (as the benchmark's clients
// send): the user message and the answer's row, as two writes (InsertMessage
// each, the hub before issue 12's burst change) or one (InsertMessages),
// under a cancellable context as the hub's are. One op is the whole burst.
func BenchmarkBurstOfSendRows(b *testing.B) {
	for _, bc := range []struct {
		name  string
		store func(s *Store, ctx context.Context, user, answer *persistence.Message) error
	}{
		{"two writes", func(s *Store, ctx context.Context, user, answer *persistence.Message) error {
			if err := s.InsertMessage(ctx, user); err != nil {
				return err
			}
			return s.InsertMessage(ctx, answer)
		}},
		{"one write", func(s *Store, ctx context.Context, user, answer *persistence.Message) error {
			return s.InsertMessages(ctx, user, answer)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, ctx := benchStore(b, Options{})
			convs := burstConversations(b, ctx, s, 250, "x")
			b.ReportAllocs()
			var lat []time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				lat = burst(convs, lat, func(c persistence.Conversation) {
					user, answer := sendRows(c)
					if err := bc.store(s, ctx, &user, &answer); err != nil {
						b.Error(err)
					}
				})
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		})
	}
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStore opens a store in a temporary directory for b, its logs
// discarded; it is closed, and ctx cancelled, when b ends.
func benchStore(b *testing.B, o Options) (*Store, context.Context) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o.Path, o.Logger = filepath.Join(b.TempDir(), "chatd.db"), slog.New(slog.DiscardHandler)
	s, err := Open(ctx, o)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close(context.Background())
		cancel()
	})
	return s, ctx
}

// burstConversations creates n users, each with one conversation without
// messages; hash is their password hash.
func burstConversations(b *testing.B, ctx context.Context, s *Store, n int, hash string) []persistence.Conversation {
	b.Helper()
	convs := make([]persistence.Conversation, n)
	for i := range convs {
		u := persistence.User{Email: fmt.Sprintf("u%d@example.test", i), Name: "U", PasswordHash: hash}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		convs[i] = persistence.Conversation{OwnerID: u.ID, Model: "m", Title: "t"}
		if err := s.CreateConversation(ctx, &convs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return convs
}

// burst runs send for every conversation at once and appends to lat how
// long each took from the burst's start.
func burst(convs []persistence.Conversation, lat []time.Duration, send func(c persistence.Conversation)) []time.Duration {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for _, c := range convs {
		wg.Go(func() {
			defer func() {
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
			send(c)
		})
	}
	wg.Wait()
	return lat
}

// sendRows are the rows of one send into c: its user message and its
// answer's streaming row.
func sendRows(c persistence.Conversation) (user, answer persistence.Message) {
	user = persistence.Message{ID: persistence.NewID(), ConversationID: c.ID, OwnerID: c.OwnerID,
		Role: persistence.RoleUser, Content: "a question of some length", Status: persistence.StatusComplete}
	answer = persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, ParentID: user.ID,
		Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
	return user, answer
}

// BenchmarkBurstOfSendReads measures the store's part of 250 sends at the
// same instant into existing conversations without messages, as the
// benchmark's burst sends them, reads included: the WebSocket's session
// recheck, the conversation and its messages, then the one write.
// "before" reads as the hub and the recheck did before issue 12's third
// burst round: the user row (UserByID), then Conversation and Messages,
// which for a conversation without messages checks that it exists (four
// waits for a read connection); "after" reads the token version alone and
// the conversation with its messages in one read transaction
// (ConversationWithMessages): two waits. With the default 4 read
// connections and with 8. One op is the whole burst; read-waits/op is how
// many reads found every read connection taken, cpu-ms/op the process's
// CPU time during the burst.
func BenchmarkBurstOfSendReads(b *testing.B) {
	before := func(s *Store, ctx context.Context, owner, id string) error {
		if _, err := s.UserByID(ctx, owner); err != nil {
			return err
		}
		if _, err := s.Conversation(ctx, owner, id); err != nil {
			return err
		}
		_, err := s.Messages(ctx, owner, id)
		return err
	}
	after := func(s *Store, ctx context.Context, owner, id string) error {
		if _, err := s.TokenVersion(ctx, owner); err != nil {
			return err
		}
		_, _, err := s.ConversationWithMessages(ctx, owner, id)
		return err
	}
	for _, bc := range []struct {
		name  string
		conns int
		read  func(s *Store, ctx context.Context, owner, id string) error
	}{
		{"before/4 conns", 4, before},
		{"after/4 conns", 4, after},
		{"before/8 conns", 8, before},
		{"after/8 conns", 8, after},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, ctx := benchStore(b, Options{ReadConns: bc.conns})
			convs := burstConversations(b, ctx, s, 250, "$2a$10$"+strings.Repeat("h", 53)) // as long as a bcrypt hash
			b.ReportAllocs()
			var lat []time.Duration
			waits0 := s.r.Stats().WaitCount
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				// Every op starts from conversations without messages.
				for _, c := range convs {
					if _, err := s.w.ExecContext(ctx, `DELETE FROM messages WHERE conversation_id = ?`, c.ID); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				cpu0 := cpuTime()
				lat = burst(convs, lat, func(c persistence.Conversation) {
					if err := bc.read(s, ctx, c.OwnerID, c.ID); err != nil {
						b.Error(err)
						return
					}
					user, answer := sendRows(c)
					if err := s.InsertMessages(ctx, &user, &answer); err != nil {
						b.Error(err)
					}
				})
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(s.r.Stats().WaitCount-waits0)/float64(b.N), "read-waits/op")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		})
	}
}
