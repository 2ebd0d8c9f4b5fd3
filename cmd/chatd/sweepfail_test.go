package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver: the test's own connection to chatd.db
)

// TestStartsWhenStartSweepFails: a start whose store refuses to mark the
// answers the last run left streaming as interrupted (a full disk; here a
// trigger refusing the update) logs the failure and serves: reads and
// sign-ins work, and the answer stays streaming for the hub's sweep. It
// exited 1, and systemd restarted it every 2 s, refusing every user, not
// only their sends.
func TestStartsWhenStartSweepFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1 := start(t, testEnv(dir))
	token, convID := registerAndCreate(t, s1.url)
	if err := s1.stop(); err != nil {
		t.Fatalf("first run ended with %v\n%s", err, s1.logs)
	}

	leaveStreaming(t, dir, convID, "hi", "half an ans")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	db, err := sql.Open("sqlite", filepath.Join(dir, "chatd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_end BEFORE UPDATE OF status ON messages
		WHEN OLD.status = 'streaming' BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := start(t, testEnv(dir))
	if logs := s2.logs.String(); !strings.Contains(logs, "could not mark the answers the last run left streaming as interrupted") ||
		!strings.Contains(logs, "disk is full") {
		t.Fatalf("no error line naming the failed sweep and its cause:\n%s", logs)
	}
	status, body := call(t, "GET", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "read after the failed sweep", status, 200, body)
	msgs := body["messages"].([]any)
	if last := msgs[len(msgs)-1].(map[string]any); last["status"] != "streaming" || last["content"] != "half an ans" {
		t.Fatalf("the answer left streaming: %v", last)
	}
	status, body = call(t, "POST", s2.url+"/api/auth/login", "", map[string]string{"email": "keeper@example.com", "password": "persistent pw"})
	mustStatus(t, "login after the failed sweep", status, 200, body)
	if err := s2.stop(); err != nil {
		t.Fatalf("second run: %v\n%s", err, s2.logs)
	}
}
