package mongo_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// writeLog records the write commands the driver sends, and its finds too
// when finds is set.
type writeLog struct {
	finds bool
	mu    sync.Mutex
	cmds  []startedCommand
}

type startedCommand struct {
	name string
	raw  bson.Raw
}

// monitor returns a command monitor feeding l.
func (l *writeLog) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find":
			if !l.finds {
				return
			}
			fallthrough
		case "insert", "update", "delete", "findAndModify":
			l.mu.Lock()
			defer l.mu.Unlock()
			l.cmds = append(l.cmds, startedCommand{name: e.CommandName, raw: append(bson.Raw(nil), e.Command...)})
		}
	}}
}

// take returns and forgets the commands recorded so far.
func (l *writeLog) take() []startedCommand {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cmds
	l.cmds = nil
	return c
}

// TestApplyMessageUpdatesIsOneUnorderedWrite checks that every batch, however
// many messages and updates it holds, is one update command, unordered, with
// one statement per message (on FerretDB, per message found streaming: the
// store checks the fence before writing, see TestFencePaths).
func TestApplyMessageUpdatesIsOneUnorderedWrite(t *testing.T) {
	t.Parallel()
	var log writeLog
	ctx, e := newEnv(t, log.monitor())
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	var answers []persistence.Message
	for range 3 {
		answers = append(answers, mustMessage(ctx, t, s, c, persistence.RoleAssistant, ""))
	}
	log.take()

	batches := []struct {
		updates    []persistence.MessageUpdate
		statements int // on MongoDB
		ferret     int // on FerretDB: an unknown id gets no statement
	}{
		{[]persistence.MessageUpdate{{ID: answers[0].ID, Append: "a "}}, 1, 1},
		{[]persistence.MessageUpdate{{ID: answers[0].ID, Append: "b "}, {ID: answers[1].ID, Append: "x "}, {ID: answers[2].ID, Append: "y "}}, 3, 3},
		{[]persistence.MessageUpdate{{ID: answers[0].ID, Append: "c "}, {ID: answers[0].ID, Append: "d"}, {ID: answers[1].ID, Status: persistence.StatusCancelled}}, 2, 2},
		{[]persistence.MessageUpdate{{ID: answers[2].ID, Append: "z"}, {ID: answers[2].ID, Status: persistence.StatusComplete, FinishReason: "stop"}, {ID: persistence.NewID(), Append: "ignored"}}, 2, 1},
	}
	for i, b := range batches {
		if mongo.IsFerretDB(s) {
			b.statements = b.ferret
		}
		if _, err := s.ApplyMessageUpdates(ctx, b.updates); err != nil {
			t.Fatal(err)
		}
		cmds := log.take()
		if len(cmds) != 1 || cmds[0].name != "update" {
			t.Fatalf("batch %d: %d write commands %v, want one update", i, len(cmds), cmds)
		}
		if ordered, ok := cmds[0].raw.Lookup("ordered").BooleanOK(); !ok || ordered {
			t.Errorf("batch %d: ordered = %v (present %v), want false", i, ordered, ok)
		}
		stmts, _ := cmds[0].raw.Lookup("updates").Array().Values()
		if len(stmts) != b.statements {
			t.Errorf("batch %d: %d statements, want %d", i, len(stmts), b.statements)
		}
	}
	if _, err := s.ApplyMessageUpdates(ctx, nil); err != nil || len(log.take()) != 0 {
		t.Errorf("an empty batch wrote (err %v)", err)
	}

	want := map[string]string{answers[0].ID: "a b c d", answers[1].ID: "x ", answers[2].ID: "y z"}
	for id, text := range want {
		m, err := s.Message(ctx, u.ID, id)
		if err != nil || m.Content != text {
			t.Errorf("message %s = %q, %v; want %q", id, m.Content, err, text)
		}
	}
}

// TestAppendWritesOnlyTheNewText streams an answer checkpoint by
// checkpoint: each update command must carry the new chunk plus a fixed
// overhead, never the text already stored, and the whole answer must cost at
// most 1.5 times its length plus a fixed overhead per checkpoint. From the
// second checkpoint on, a command carrying the stored text would pass the
// bound (two chunks are more than one plus the overhead), so a few
// checkpoints pin it; 200 written one after another cost seconds on a
// shared FerretDB and pinned nothing more.
func TestAppendWritesOnlyTheNewText(t *testing.T) {
	t.Parallel()
	var log writeLog
	ctx, e := newEnv(t, log.monitor())
	s := e.store
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "chat")
	a := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "")
	log.take()

	const checkpoints, perCheckpoint, overhead = 5, 1000, 400
	chunk := strings.Repeat("word ", perCheckpoint/5)
	var total int
	for i := range checkpoints {
		u := persistence.MessageUpdate{ID: a.ID, Append: chunk}
		if i == checkpoints-1 {
			u.Status, u.FinishReason = persistence.StatusComplete, "stop"
		}
		if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{u}); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range log.take() {
			if len(cmd.raw) > perCheckpoint+overhead {
				t.Fatalf("checkpoint %d wrote %d bytes for %d new bytes (%d already stored)",
					i, len(cmd.raw), perCheckpoint, i*perCheckpoint)
			}
			total += len(cmd.raw)
		}
	}
	text := checkpoints * perCheckpoint
	t.Logf("%d bytes of text, %d bytes of update commands (%.3fx)", text, total, float64(total)/float64(text))
	if total > text*3/2+checkpoints*overhead {
		t.Errorf("wrote %d bytes for %d bytes of text", total, text)
	}
	m, err := s.Message(ctx, u.ID, a.ID)
	if err != nil || len(m.Content) != text || m.Status != persistence.StatusComplete {
		t.Errorf("final message: %d bytes, status %s, err %v", len(m.Content), m.Status, err)
	}
}
