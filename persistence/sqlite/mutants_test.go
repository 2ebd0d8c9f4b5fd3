package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"chatd/persistence"
)

// mutantEnv names the broken behaviour the contract tests of a child test
// process wrap the real store with (see TestSuiteCatchesMutants).
const mutantEnv = "CHATD_STORETEST_MUTANT"

// mutant is a deliberately broken store: the real SQLite store with one
// behaviour changed the way a plausible bug would change it.
type mutant struct {
	persistence.Store
	kind   string
	mu     sync.Mutex
	owners map[string]string // conversation id -> owner, for "ignore-owner"
}

// wrapMutant returns s itself unless the process runs as a mutant child.
func wrapMutant(s persistence.Store) persistence.Store {
	kind := os.Getenv(mutantEnv)
	if kind == "" {
		return s
	}
	return &mutant{Store: s, kind: kind, owners: map[string]string{}}
}

// FinishDeletions passes through, or finishes nothing (finish-nothing).
func (m *mutant) FinishDeletions(ctx context.Context) (int, error) {
	if m.kind == "finish-nothing" {
		return 0, nil
	}
	return m.Store.(persistence.DeletionFinisher).FinishDeletions(ctx)
}

func (m *mutant) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	err := m.Store.CreateConversation(ctx, c)
	m.mu.Lock()
	m.owners[c.ID] = c.OwnerID
	m.mu.Unlock()
	return err
}

func (m *mutant) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	if m.kind == "ignore-owner" {
		m.mu.Lock()
		if o, ok := m.owners[id]; ok {
			ownerID = o
		}
		m.mu.Unlock()
	}
	return m.Store.Conversation(ctx, ownerID, id)
}

func (m *mutant) ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	if m.kind == "ignore-search" {
		q.Search = ""
	}
	p, err := m.Store.ListConversations(ctx, ownerID, q)
	if m.kind == "lax-cursor" && errors.Is(err, persistence.ErrInvalidCursor) {
		q.Cursor = ""
		p, err = m.Store.ListConversations(ctx, ownerID, q)
	}
	switch {
	case m.kind == "reverse-list":
		for i, j := 0, len(p.Conversations)-1; i < j; i, j = i+1, j-1 {
			p.Conversations[i], p.Conversations[j] = p.Conversations[j], p.Conversations[i]
		}
	case m.kind == "cursor-skips" && p.NextCursor != "" && q.Cursor != "" && len(p.Conversations) > 0:
		p.Conversations = p.Conversations[1:] // an off-by-one on later pages
	}
	return p, err
}

func (m *mutant) InsertMessage(ctx context.Context, msg *persistence.Message) error {
	err := m.Store.InsertMessage(ctx, msg)
	if m.kind == "swallow-duplicate" && errors.Is(err, persistence.ErrDuplicate) {
		return nil
	}
	return err
}

func (m *mutant) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	msg, err := m.Store.Message(ctx, ownerID, id)
	if m.kind == "drop-usage" {
		msg.Usage = nil
	}
	return msg, err
}

func (m *mutant) Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	ms, err := m.Store.Messages(ctx, ownerID, conversationID)
	if m.kind == "messages-newest-first" {
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
	}
	return ms, err
}

func (m *mutant) UserByID(ctx context.Context, id string) (persistence.User, error) {
	u, err := m.Store.UserByID(ctx, id)
	if m.kind == "opaque-notfound" && errors.Is(err, persistence.ErrNotFound) {
		err = errors.New("no rows in result set")
	}
	return u, err
}

func (m *mutant) ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error) {
	if m.kind == "password-not-stored" {
		return m.Store.BumpTokenVersion(ctx, id)
	}
	return m.Store.ChangePassword(ctx, id, passwordHash, fromVersion)
}

func (m *mutant) ApplyMessageUpdates(ctx context.Context, ups []persistence.MessageUpdate) ([]string, error) {
	if m.kind == "ignore-append" {
		ups = append([]persistence.MessageUpdate(nil), ups...)
		for i := range ups {
			ups[i].Append = ""
		}
	}
	if m.kind == "last-update-only" && len(ups) > 1 {
		ups = ups[len(ups)-1:]
	}
	skipped, err := m.Store.ApplyMessageUpdates(ctx, ups)
	if m.kind == "hide-skipped" {
		skipped = nil
	}
	return skipped, err
}

func (m *mutant) InterruptStreaming(ctx context.Context) (int, error) {
	n, err := m.Store.InterruptStreaming(ctx)
	if m.kind == "interrupt-miscount" && n > 0 {
		n++
	}
	return n, err
}

// TestSuiteCatchesMutants runs contract tests in child processes against
// deliberately broken stores and requires each to fail: evidence that the
// suite checks what it claims to. (The same tests pass on the real store in
// TestContract and TestReopen.)
func TestSuiteCatchesMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Fatalf("nested mutant run") // a child runs only one contract test
	}
	t.Parallel()
	cases := []struct{ kind, failing string }{
		{"ignore-owner", "TestContract/Conversations/OwnerScoping"},
		{"ignore-search", "TestContract/Search/TitlesAndMessages"},
		{"lax-cursor", "TestContract/List/InvalidCursor"},
		{"reverse-list", "TestContract/List/NewestFirst"},
		{"cursor-skips", "TestContract/List/Pagination"},
		{"swallow-duplicate", "TestContract/Messages/DuplicateClientID"},
		{"drop-usage", "TestContract/Messages/UsageRoundTrip"},
		{"messages-newest-first", "TestContract/Messages/TreeOldestFirst"},
		{"opaque-notfound", "TestContract/Users/Unknown"},
		{"password-not-stored", "TestContract/Users/ChangePassword"},
		{"ignore-append", "TestContract/Updates/AppendInOrder"},
		{"last-update-only", "TestContract/Updates/Batch"},
		{"interrupt-miscount", "TestContract/Updates/InterruptStreaming"},
		{"hide-skipped", "TestContract/Updates/FenceAfterInterrupt"},
		{"forget-on-reopen", "TestReopen/Reopen"},
		{"finish-nothing", "TestContract/Users/DeleteCutOff"},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			// Only the test expected to fail runs, to keep this cheap under -race.
			run := "^" + strings.ReplaceAll(tc.failing, "/", "$/^") + "$"
			cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+tc.kind)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("mutant %s: the suite did not fail (err %v)", tc.kind, err)
			}
			if !strings.Contains(string(out), "--- FAIL: "+tc.failing+" ") {
				t.Fatalf("mutant %s: %s did not fail; output:\n%s", tc.kind, tc.failing, tail(string(out), 40))
			}
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
