package sqlite_test

import (
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"chatd/internal/syncbuf"
	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// TestClockAfterRestart: a run whose clock is an hour behind the last
// one's (the host's clock stepped back) still writes after what is
// stored. Its new message follows the latest one of its conversation,
// that conversation goes to the top of the list, and a new conversation
// above it.
func TestClockAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "chatd.db")
	s := openAt(t, path)
	u := persistence.User{Email: "clock@example.test", Name: "c", PasswordHash: "h"}
	must(t, s.CreateUser(ctx, &u))
	conv := func(title string) persistence.Conversation {
		c := persistence.Conversation{OwnerID: u.ID, Title: title}
		must(t, s.CreateConversation(ctx, &c))
		return c
	}
	msg := func(c persistence.Conversation, parent, content string) persistence.Message {
		m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: parent, Role: persistence.RoleUser,
			Content: content, Status: persistence.StatusComplete}
		must(t, s.InsertMessage(ctx, &m))
		return m
	}
	x := conv("X")
	q1 := msg(x, "", "q1")
	a1 := msg(x, q1.ID, "a1")
	y := conv("Y")
	msg(y, "", "in Y")
	must(t, sqlite.ShiftTimes(ctx, s, time.Hour))
	must(t, s.Close(ctx))

	s = openAt(t, path)
	closeOnCleanup(t, s)
	q2 := msg(x, a1.ID, "q2")
	ms, err := s.Messages(ctx, u.ID, x.ID)
	must(t, err)
	if got, want := ids(ms), []string{q1.ID, a1.ID, q2.ID}; !slices.Equal(got, want) {
		t.Errorf("messages of X: %v, want %v (the reply last)", got, want)
	}
	z := conv("Z")
	p, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{})
	must(t, err)
	var list []string
	for _, c := range p.Conversations {
		list = append(list, c.Title)
	}
	if want := []string{"Z", "X", "Y"}; !slices.Equal(list, want) {
		t.Errorf("list: %v, want %v (X with the latest message above Y, Z created last first)", list, want)
	}
	if z.CreatedAt.Before(q2.CreatedAt) {
		t.Errorf("Z created at %v, before the message q2 stored before it (%v)", z.CreatedAt, q2.CreatedAt)
	}
}

// TestClockAheadWarned: a file whose latest time is an hour past the
// clock (a run whose clock was ahead wrote it) opens, is logged with how
// far ahead it is, and still works: its new message is stamped past it.
// Without the warning every later time was moved past it silently. A file
// written by this clock opens without the warning.
func TestClockAheadWarned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "chatd.db")
	open := func() (*sqlite.Store, string) {
		logs := &syncbuf.Buffer{}
		s, err := sqlite.Open(ctx, sqlite.Options{Path: path, DeletionSweep: -1,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		must(t, err)
		return s, logs.String()
	}
	s, _ := open()
	u := persistence.User{Email: "ahead@example.test", Name: "a", PasswordHash: "h"}
	must(t, s.CreateUser(ctx, &u))
	c := persistence.Conversation{OwnerID: u.ID, Title: "T"}
	must(t, s.CreateConversation(ctx, &c))
	must(t, s.Close(ctx))
	s, logs := open()
	must(t, s.Close(ctx))
	if strings.Contains(logs, "ahead of this host's clock") {
		t.Errorf("a file written by this clock warned: %s", logs)
	}

	s, _ = open()
	must(t, sqlite.ShiftTimes(ctx, s, time.Hour))
	must(t, s.Close(ctx))
	s, logs = open()
	closeOnCleanup(t, s)
	// The time ahead is read at the open, seconds after the shift on a
	// loaded machine.
	var ahead time.Duration
	if m := regexp.MustCompile(`ahead=(\S+)`).FindStringSubmatch(logs); m != nil {
		ahead, _ = time.ParseDuration(m[1])
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "ahead of this host's clock") ||
		ahead < 50*time.Minute || ahead > time.Hour {
		t.Errorf("no warning naming the hour ahead; logs: %s", logs)
	}
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "q", Status: persistence.StatusComplete}
	must(t, s.InsertMessage(ctx, &m))
	if m.CreatedAt.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("message stamped %v, want past the stored time an hour ahead", m.CreatedAt)
	}
}

func ids(ms []persistence.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
