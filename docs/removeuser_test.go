package docs

import (
	"context"
	"database/sql"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	_ "modernc.org/sqlite" // the "sqlite" driver: a second connection to chatd.db, as the sqlite3 shell

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/sqlite"
)

// docEmail is the email deploy.md's statements name.
const docEmail = "user@example.com"

// deployLine returns the one line of deploy.md's code blocks
// that contains every one of marks.
func deployLine(t *testing.T, marks ...string) string {
	t.Helper()
	var found []string
	for _, b := range readBlocks(t, "deploy.md") {
		for _, l := range b.lines {
			all := true
			for _, m := range marks {
				all = all && strings.Contains(l, m)
			}
			if all {
				found = append(found, l)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("deploy.md: %d lines hold %q, want 1: %q", len(found), marks, found)
	}
	return found[0]
}

// account is what the tests create: a user with a conversation and two
// messages.
type account struct {
	user persistence.User
	conv persistence.Conversation
}

// newAccount creates an account of email in st.
func newAccount(ctx context.Context, t *testing.T, st persistence.Store, email string) account {
	t.Helper()
	a := account{user: persistence.User{Email: email, Name: "N", PasswordHash: "h"}}
	if err := st.CreateUser(ctx, &a.user); err != nil {
		t.Fatalf("create user: %v", err)
	}
	a.conv = persistence.Conversation{OwnerID: a.user.ID, Title: "private", Model: "m"}
	if err := st.CreateConversation(ctx, &a.conv); err != nil {
		t.Fatalf("create conversation: %v", err)
	}
	for _, m := range []persistence.Message{
		{Role: persistence.RoleUser, Content: "a secret question", Status: persistence.StatusComplete},
		{Role: persistence.RoleAssistant, Content: "a secret answer", Status: persistence.StatusStreaming},
	} {
		m.ConversationID, m.OwnerID = a.conv.ID, a.user.ID
		if err := st.InsertMessage(ctx, &m); err != nil {
			t.Fatalf("insert message: %v", err)
		}
	}
	return a
}

// checkMarked checks that the account of email is gone for every read and
// its sessions refused, as after DELETE /api/auth/me's mark.
func checkMarked(ctx context.Context, t *testing.T, st persistence.Store, a account) {
	t.Helper()
	if _, err := st.UserByEmail(ctx, a.user.Email); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("the marked account is still found by its email: %v", err)
	}
	if _, err := persistence.UserTokenVersion(ctx, st, a.user.ID); err == nil {
		t.Error("the marked account's sessions are still accepted")
	}
}

// TestRemoveUserByHand runs deploy.md's "Removing a user" statements: the
// SQLite one through the sqlite3 shell (or, without it, the same SQL on a
// second connection) on the file of a running store, the MongoDB one's
// filter and update (parsed from its mongosh line) on FerretDB. The store's
// deletion sweep (FinishDeletions) then leaves no row of the account: no
// user, conversation, message, chunk or search entry; another account is
// untouched. Before, no procedure existed, and DELETE FROM users left the
// account's conversations and messages for good.
func TestRemoveUserByHand(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", testRemoveUserSQLite)
	t.Run("MongoDB", testRemoveUserMongo)
}

func testRemoveUserSQLite(t *testing.T) {
	t.Parallel()
	line := deployLine(t, "sqlite3", "UPDATE users SET deleting_at")
	m := regexp.MustCompile(`/var/lib/chatd/chatd\.db "([^"]+)"$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("deploy.md: no statement on /var/lib/chatd/chatd.db in %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	path := filepath.Join(t.TempDir(), "chatd.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	gone, kept := newAccount(ctx, t, st, "gone@example.com"), newAccount(ctx, t, st, "kept@example.com")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	var rowids []int64
	rows, err := db.QueryContext(ctx, `SELECT rowid FROM messages WHERE owner_id = ?`, gone.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		rowids = append(rowids, r)
	}
	if err := rows.Err(); err != nil || len(rowids) != 2 {
		t.Fatalf("messages of the account: %v (%v)", rowids, err)
	}

	// The shell's connection rewrites the row: whether the old bytes are
	// zeroed is its build's default unless the statement sets it, as the
	// store's own connections do.
	if !strings.HasPrefix(m[1], "PRAGMA secure_delete=ON; ") {
		t.Errorf("deploy.md: the statement %q does not start with PRAGMA secure_delete=ON", m[1])
	}
	printed := runMark(ctx, t, db, strings.ReplaceAll(strings.ReplaceAll(line, "/var/lib/chatd/chatd.db", path), docEmail, gone.user.Email),
		strings.ReplaceAll(m[1], docEmail, gone.user.Email))
	if printed != "1\n"+gone.user.ID {
		t.Errorf("the statement printed %q, want 1 (the pragma) then the account's id %s", printed, gone.user.ID)
	}
	checkMarked(ctx, t, st, gone)
	check := deployLine(t, "sqlite3", "SELECT count(*) FROM users WHERE email")
	checkStmt := regexp.MustCompile(`/var/lib/chatd/chatd\.db "([^"]+)"$`).FindStringSubmatch(check)
	if checkStmt == nil {
		t.Fatalf("deploy.md: no statement on /var/lib/chatd/chatd.db in %q", check)
	}
	runCheck := func() string {
		t.Helper()
		return runMark(ctx, t, db, strings.ReplaceAll(strings.ReplaceAll(check, "/var/lib/chatd/chatd.db", path), docEmail, gone.user.Email),
			strings.ReplaceAll(checkStmt[1], docEmail, gone.user.Email))
	}
	if got := runCheck(); got != "1" {
		t.Errorf("the documented check printed %q before the sweep, want 1", got)
	}
	if n, err := st.FinishDeletions(ctx); err != nil || n < 1 {
		t.Fatalf("FinishDeletions = %d, %v; want the marked account finished", n, err)
	}
	if got := runCheck(); got != "0" {
		t.Errorf("the documented check printed %q after the sweep, want 0", got)
	}
	for _, c := range []struct{ what, q string }{
		{"users", `SELECT count(*) FROM users WHERE id = ?1`},
		{"conversations", `SELECT count(*) FROM conversations WHERE owner_id = ?1`},
		{"messages", `SELECT count(*) FROM messages WHERE owner_id = ?1`},
	} {
		if n := count(c.q, gone.user.ID); n != 0 {
			t.Errorf("%d %s of the removed account left", n, c.what)
		}
		if n := count(c.q, kept.user.ID); n == 0 {
			t.Errorf("the other account's %s are gone", c.what)
		}
	}
	for _, r := range rowids {
		if n := count(`SELECT count(*) FROM message_chunks WHERE msg = ?`, r); n != 0 {
			t.Errorf("%d chunks of a removed message left", n)
		}
		// The indexer drops from chatd-search.db what the queue names.
		if n := count(`SELECT count(*) FROM search_pending WHERE msg = ?`, r); n != 1 {
			t.Errorf("the removal of message %d from the search index is not queued", r)
		}
	}
}

// runMark runs one of deploy.md's SQLite lines (with the test's path and
// email) through the sqlite3 shell, or the statements of its SQL stmt on
// one connection of db when there is no shell, and returns what it
// printed: each statement's value (one column, one row), a line each.
func runMark(ctx context.Context, t *testing.T, db *sql.DB, line, stmt string) string {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err == nil {
		out, err := exec.CommandContext(ctx, "bash", "-c", line).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Log("no sqlite3 shell: running the statements on a second connection")
	conn, err := db.Conn(ctx) // one connection, as the shell's, for the pragma
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var out []string
	for s := range strings.SplitSeq(stmt, ";") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var v string
		if err := conn.QueryRowContext(ctx, s).Scan(&v); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		out = append(out, v)
	}
	return strings.Join(out, "\n")
}

// mongoshCall finds the method and arguments of a call on db.users in
// deploy.md's mongosh lines; parseMongosh turns the arguments from
// mongosh's JavaScript into relaxed Extended JSON with mongoshKey (keys
// quoted) and mongoshLong (NumberLong(n) a 64-bit n), new Date() being
// the time now.
var (
	mongoshCall = regexp.MustCompile(`db\.users\.([A-Za-z]+)\((.*)\)'$`)
	mongoshKey  = regexp.MustCompile(`([{,]\s*)(\$?[A-Za-z_]+)\s*:`)
	mongoshLong = regexp.MustCompile(`NumberLong\((-?\d+)\)`)
)

// parseMongosh returns the method called on db.users in line and its
// arguments, with email in place of the documented one.
func parseMongosh(t *testing.T, line, email string) (method string, args []bson.D) {
	t.Helper()
	m := mongoshCall.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("deploy.md: no db.users.<method>(...) in %q", line)
	}
	js := strings.ReplaceAll(m[2], docEmail, email)
	js = mongoshKey.ReplaceAllString(js, `$1"$2":`)
	js = strings.ReplaceAll(js, "new Date()", `{"$date": "`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`)
	js = mongoshLong.ReplaceAllString(js, `{"$$numberLong": "$1"}`)
	var doc struct {
		Args []bson.D `bson:"args"`
	}
	if err := bson.UnmarshalExtJSON([]byte(`{"args": [`+js+`]}`), false, &doc); err != nil {
		t.Fatalf("deploy.md's %s arguments %s: %v", m[1], js, err)
	}
	return m[1], doc.Args
}

func testRemoveUserMongo(t *testing.T) {
	t.Parallel()
	line := deployLine(t, "mongosh", "updateOne")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	uri := ferret.Start(t)
	st, err := mongo.Open(ctx, mongo.Options{URI: uri, DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	client, err := drv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	raw := client.Database(mongo.DefaultDatabase)
	gone, kept := newAccount(ctx, t, st, "gone@example.com"), newAccount(ctx, t, st, "kept@example.com")
	before, err := persistence.UserTokenVersion(ctx, st, gone.user.ID)
	if err != nil {
		t.Fatal(err)
	}

	method, args := parseMongosh(t, line, gone.user.Email)
	if method != "updateOne" || len(args) != 2 {
		t.Fatalf("deploy.md: %s with %d arguments, want updateOne with a filter and an update", method, len(args))
	}
	filter, update := args[0], args[1]
	res, err := raw.Collection("users").UpdateOne(ctx, filter, update)
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("the documented updateOne: %+v, %v; want matchedCount 1", res, err)
	}
	var marked struct {
		DeletingAt   any    `bson:"deleting_at"`
		PasswordHash string `bson:"password_hash"`
		TokenVersion any    `bson:"token_version"`
	}
	if err := raw.Collection("users").FindOne(ctx, filter).Decode(&marked); err != nil {
		t.Fatal(err)
	}
	if _, ok := marked.DeletingAt.(bson.DateTime); !ok || marked.PasswordHash != "" || marked.TokenVersion != before+1 {
		t.Errorf("marked: deleting_at %T, password_hash %q, token_version %#v; want a date, empty, int64 %d",
			marked.DeletingAt, marked.PasswordHash, marked.TokenVersion, before+1)
	}
	checkMarked(ctx, t, st, gone)
	method, args = parseMongosh(t, deployLine(t, "mongosh", "countDocuments({email"), gone.user.Email)
	if method != "countDocuments" || len(args) != 1 {
		t.Fatalf("deploy.md: %s with %d arguments, want countDocuments with a filter", method, len(args))
	}
	runCheck := func() int64 {
		t.Helper()
		n, err := raw.Collection("users").CountDocuments(ctx, args[0])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := runCheck(); n != 1 {
		t.Errorf("the documented check answers %d before the sweep, want 1", n)
	}
	if n, err := st.FinishDeletions(ctx); err != nil || n < 1 {
		t.Fatalf("FinishDeletions = %d, %v; want the marked account finished", n, err)
	}
	if n := runCheck(); n != 0 {
		t.Errorf("the documented check answers %d after the sweep, want 0", n)
	}
	for _, a := range []struct {
		account
		want bool
	}{{gone, false}, {kept, true}} {
		owner, err := bson.ObjectIDFromHex(a.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			coll   string
			filter bson.D
		}{
			{"users", bson.D{{Key: "_id", Value: owner}}},
			{"conversations", bson.D{{Key: "owner_id", Value: owner}}},
			{"messages", bson.D{{Key: "owner_id", Value: owner}}},
		} {
			n, err := raw.Collection(c.coll).CountDocuments(ctx, c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != a.want {
				t.Errorf("%s: %d %s left, want some: %v", a.user.Email, n, c.coll, a.want)
			}
		}
	}
}
