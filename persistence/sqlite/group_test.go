package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// TestGroupCommitIsolatesFailures: transactions committed together stay
// separate: one caller's failure (a duplicate client message id) rolls back
// only its own changes, and every other caller's changes are stored when
// its call returns.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, convID := openForInsert(t)
	u, c := persistence.User{ID: owner}, persistence.Conversation{ID: convID}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("client-%d", i)
			if i%3 == 0 {
				id = "client-dup" // all but the first of these are duplicates
			}
			m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
				Content: fmt.Sprint("message ", i), Status: persistence.StatusComplete, ClientMessageID: id}
			errs[i] = s.InsertMessage(ctx, &m)
			if errs[i] == nil {
				if _, err := s.Message(ctx, u.ID, m.ID); err != nil {
					t.Errorf("message %d not readable after its insert returned: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	ok, dup := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, persistence.ErrDuplicate) && i%3 == 0:
			dup++
		default:
			t.Errorf("insert %d: %v", i, err)
		}
	}
	msgs, err := s.Messages(ctx, u.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantDup := (n+2)/3 - 1
	if dup != wantDup || ok != n-wantDup || len(msgs) != ok {
		t.Fatalf("%d stored, %d inserts succeeded, %d duplicates refused; want %d, %d, %d",
			len(msgs), ok, dup, n-wantDup, n-wantDup, wantDup)
	}
}

// TestWriteAfterClose: a write after Close fails at once instead of waiting
// for a committer that is gone.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	u := persistence.User{Email: "late@example.test", Name: "L", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); !errors.Is(err, errStoreClosed) {
		t.Fatalf("CreateUser after Close: %v, want %v", err, errStoreClosed)
	}
}

// TestGroupRerunReportsOnce: when a transaction of a group fails, the
// committer runs the group again in savepoints; what the others report
// is what one run found (ApplyMessageUpdates names each skipped id once),
// and their changes are stored once.
func TestGroupRerunReportsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	const n = 60
	answers := make([]persistence.Message, n)
	for i := range answers {
		answers[i] = persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &answers[i]); err != nil {
			t.Fatal(err)
		}
	}
	unknown := persistence.NewID()
	var wg sync.WaitGroup
	skipped := make([][]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			skipped[i], errs[i] = s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
				{ID: answers[i].ID, Append: "x"}, {ID: unknown, Append: "y"}})
		})
		wg.Go(func() { // fails: every one of these repeats one client id
			m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
				Content: "q", Status: persistence.StatusComplete, ClientMessageID: "same"}
			_ = s.InsertMessage(ctx, &m)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(skipped[i]) != 1 || skipped[i][0] != unknown {
			t.Fatalf("update %d: skipped %v, err %v; want only %s, once", i, skipped[i], errs[i], unknown)
		}
		m, err := s.Message(ctx, owner, answers[i].ID)
		if err != nil || m.Content != "x" {
			t.Fatalf("answer %d holds %q (%v), want the append applied once", i, m.Content, err)
		}
	}
}

// holdCommitter runs a write that keeps the committer busy until the
// returned function is called.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, free, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- s.write(context.Background(), func(*writeTx) error {
			close(started)
			<-free
			return nil
		})
	}()
	<-started
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(free)
			if err := <-held; err != nil {
				t.Errorf("the holding write: %v", err)
			}
		})
	}
	t.Cleanup(release) // before the store closes, also when the test failed
	return release
}

// waitQueued waits until n transactions wait in the committer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.writes) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued for the busy committer, want %d: a caller waits for the committer to take its write", len(s.writes), n)
		}
		runtime.Gosched()
	}
}

// TestWritesQueueWhileCommitting: writes that come while the committer is
// busy are queued at once, without waiting for the committer to take each
// (a hand-off that cost every caller a second wake-up), and are all
// stored, together, once it is free.
func TestWritesQueueWhileCommitting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	release := holdCommitter(t, s)
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
				Content: fmt.Sprint("message ", i), Status: persistence.StatusComplete}
			errs <- s.InsertMessage(ctx, &m)
		}()
	}
	waitQueued(t, s, n)
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.Messages(ctx, owner, conv)
	if err != nil || len(msgs) != n {
		t.Fatalf("%d messages stored (%v), want %d", len(msgs), err, n)
	}
}

// TestCloseCommitsQueuedWrites: Close, called while writes wait for the
// committer, lets the committer store them before it ends; every caller
// returns, none is left waiting, and what was reported stored is there
// when the file is opened again.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	release := holdCommitter(t, s)
	const n = 20
	type result struct {
		id  string
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
				Content: fmt.Sprint("message ", i), Status: persistence.StatusComplete}
			err := s.InsertMessage(ctx, &m)
			results <- result{m.ID, err}
		}()
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	var stored []string
	for range n {
		r := <-results
		switch {
		case r.err == nil:
			stored = append(stored, r.id)
		case !errors.Is(r.err, errStoreClosed):
			t.Fatalf("queued write: %v", r.err)
		}
	}
	again, err := Open(ctx, Options{Path: s.path})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = again.Close(ctx) }()
	for _, id := range stored {
		if _, err := again.Message(ctx, owner, id); err != nil {
			t.Fatalf("message %s was reported stored but is not: %v", id, err)
		}
	}
	if len(stored) != n {
		t.Fatalf("%d of %d queued writes stored before the store closed, want all", len(stored), n)
	}
}

// TestGroupLostInSavepointsRunsNoMore: when a transaction of a group run
// again in savepoints ends the group's database transaction (SQLite rolls
// it back by itself after a full disk, an I/O error or an interrupt; here
// a ROLLBACK stands in for it), the transactions after it are not run
// outside the group (a SAVEPOINT opening a transaction of its own, its
// RELEASE committing it) and every one is reported as what it is: failed
// and not stored. The batch writer retries a failed update: one reported
// failed but stored was appended twice.
func TestGroupLostInSavepointsRunsNoMore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	answers := make([]persistence.Message, 2)
	for i := range answers {
		answers[i] = persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &answers[i]); err != nil {
			t.Fatal(err)
		}
	}
	release := holdCommitter(t, s)
	// One group, in this order: an append that succeeds, a transaction
	// that fails (the group runs again in savepoints), one that loses the
	// group's transaction, and another append.
	errs := make([]chan error, 4)
	fns := []func() error{
		func() error {
			_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: answers[0].ID, Append: "first"}})
			return err
		},
		func() error {
			return s.write(ctx, func(*writeTx) error { return persistence.ErrNotFound })
		},
		func() error {
			return s.write(ctx, func(tx *writeTx) error {
				if _, err := tx.tx.ExecContext(ctx, "ROLLBACK"); err != nil {
					return err
				}
				return errors.New("disk I/O error (injected)")
			})
		},
		func() error {
			_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: answers[1].ID, Append: "last"}})
			return err
		},
	}
	for i, fn := range fns {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- fn() }()
		waitQueued(t, s, i+1)
	}
	release()
	got := make([]error, len(errs))
	for i := range errs {
		got[i] = <-errs[i]
	}
	if got[1] == nil || got[2] == nil {
		t.Fatalf("the failing transactions reported %v, %v; want errors", got[1], got[2])
	}
	for i, c := range []struct {
		op     int
		answer persistence.Message
		text   string
	}{{0, answers[0], "first"}, {3, answers[1], "last"}} {
		m, err := s.Message(ctx, owner, c.answer.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored := m.Content == c.text
		if !stored && m.Content != "" {
			t.Fatalf("answer %d holds %q, want %q or nothing", i, m.Content, c.text)
		}
		if (got[c.op] == nil) != stored {
			t.Errorf("transaction %d reported %v, its append stored: %v", c.op, got[c.op], stored)
		}
	}
	if got[3] == nil || !strings.Contains(got[3].Error(), "disk I/O error (injected)") {
		t.Errorf("the transaction after the lost one reported %v; want it not run, naming the cause", got[3])
	}
	// The writer is back to normal: a write is committed (a reader sees it).
	m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
		Content: "after", Status: persistence.StatusComplete}
	if err := s.InsertMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(ctx, owner, m.ID); err != nil {
		t.Fatalf("a write after the lost group: %v", err)
	}
}
