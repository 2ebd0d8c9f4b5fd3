package sqlite

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "chatd.db")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestPragmas checks the settings on the writer and on every reader
// connection, the searches' included.
func TestPragmas(t *testing.T) {
	t.Parallel()
	const readers, searchers = 3, 2
	s := openTest(t, Options{ReadConns: readers, SearchConns: searchers, BusyTimeout: 7 * time.Second})
	ctx := context.Background()
	want := map[string]int64{"busy_timeout": 7000, "foreign_keys": 1, "cache_size": -8192, "temp_store": 2}
	// synchronous: FULL (2) on the writer, which syncs every commit it
	// acknowledges (TestSyncModes), NORMAL (1) on the readers.
	check := func(name string, c *sql.Conn, queryOnly, synchronous int64) {
		t.Helper()
		var mode string
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("%s: journal_mode = %q (%v), want wal", name, mode, err)
		}
		w := map[string]int64{"query_only": queryOnly, "synchronous": synchronous}
		for k, v := range want {
			w[k] = v
		}
		for pragma, v := range w {
			var got int64
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != v {
				t.Fatalf("%s: PRAGMA %s = %d (%v), want %d", name, pragma, got, err, v)
			}
		}
	}
	// A scrub (scrub.go) gives the writer its busy timeout back.
	if err := s.scrubLog(ctx, s.w, s.path); err != nil {
		t.Fatal(err)
	}
	wc, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wc.Close() }) // before Close's, which needs it, should a check fail
	check("writer", wc, 0, 2)
	wc.Close()
	// The connections that delete zero what they delete.
	for name, db := range map[string]*sql.DB{"writer": s.w, "indexer": s.sx} {
		var on int64
		if err := db.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&on); err != nil || on != 1 {
			t.Fatalf("%s: PRAGMA secure_delete = %d (%v), want 1", name, on, err)
		}
	}
	for name, pool := range map[string]struct {
		db *sql.DB
		n  int
	}{"reader": {s.r, readers}, "search reader": {s.rs, searchers}} {
		var conns []*sql.Conn
		for range pool.n { // hold them all so each check sees a distinct connection
			c, err := pool.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			check(name+" "+string(rune('0'+i)), c, 1, 1)
			c.Close()
		}
		if st := pool.db.Stats(); st.MaxOpenConnections != pool.n {
			t.Fatalf("%s pool allows %d connections, want %d", name, st.MaxOpenConnections, pool.n)
		}
	}
	if st := s.w.Stats(); st.MaxOpenConnections != 1 {
		t.Fatalf("writer pool allows %d connections, want 1", st.MaxOpenConnections)
	}
}

// TestReaderIsQueryOnly checks that the read pool cannot write.
func TestReaderIsQueryOnly(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	_, err := s.r.ExecContext(context.Background(), `INSERT INTO users (id, email, name, password_hash, token_version, created_at, updated_at) VALUES ('x','x','x','x',0,0,0)`)
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("write through the read pool: err = %v, want a read-only error", err)
	}
}

// TestQueryPlans checks that the hot queries use their indexes: no table
// scans and no sorting in a temporary b-tree. A search reads only the
// owner's key range of the trigram index (a seek, "M1><") and the owner's
// hits by rowid, never every user's hits: at a million messages those were
// 10,000 rows read per search (docs/benchmarks.md, data growth); and only
// the owner's entries of the index's queue, never the whole queue with
// every queued message's text.
func TestQueryPlans(t *testing.T) {
	searchPlan := []string{"SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
		"SCAN search.message_fts VIRTUAL TABLE INDEX 0:M1><",
		"SEARCH p USING COVERING INDEX search_pending_owner (owner=?)"}
	t.Parallel()
	s := openTest(t, Options{})
	cases := []struct {
		name, query, index string
		args               []any
		also               []string // further plan lines required
		never              []string // plan fragments refused
	}{
		{"list", qList, "conversations_owner_updated", []any{"o", 0, "", "", 31}, nil, nil},
		{"list with cursor", qListCursor, "conversations_owner_updated", []any{"o", 1, "a", "", 31}, nil, nil},
		{"search", qListSearch, "conversations_owner_updated", []any{"o", 0, "", "xyz", 31, `"xyz"`},
			searchPlan, nil},
		{"search with cursor", qListCursorSearch, "conversations_owner_updated", []any{"o", 1, "a", "xyz", 31, `"xyz"`},
			searchPlan, nil},
		{"page", qMsgsNewest, "messages_conversation_created", []any{"c", "o", 201}, nil, nil},
		{"page before", qMsgsBefore, "messages_conversation_created", []any{"c", "o", 201, 5, "m"}, nil, nil},
		{"messages", qMsgsConv, "messages_conversation_created", []any{"c", "o"}, nil, nil},
		// A repeated send's answer: the conversation's rows newest first,
		// never a sort of them.
		{"latest answer", qLatestAnswer, "messages_conversation_created", []any{"c", "o", "p"}, nil, nil},
		{"by client id", qMsgByCID, "messages_owner_client_id", []any{"o", "c"}, nil, nil},
		{"interrupt", qInterrupt, "messages_streaming", []any{1, "e", "c"}, nil, nil},
		{"streaming conversations", qStreamingConvs, "messages_streaming", []any{"o"}, nil, nil},
		{"delete a user's messages", qDeleteUserMsgs, "messages_conversation_created", []any{"o"},
			[]string{"SEARCH conversations USING COVERING INDEX conversations_owner_updated (owner_id=?)"}, nil},
		// The index over (owner_id, client_id) leaves out conversations
		// being deleted (schema 12): a user's deletion takes them all
		// through the other index starting with owner_id.
		{"delete a user's conversations", qDeleteUserConvs, "conversations_owner_updated", []any{"o"}, nil, nil},
		// A bounded step of an account deletion: the rows by rowid, found
		// through an index starting with owner_id, never a scan.
		{"delete a step of a user's messages", qDeleteUserMsgsStep, "messages_owner_client_id", []any{"o", 2000},
			[]string{"SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"}, nil},
		{"delete a step of a user's conversations", qDeleteUserConvsStep, "conversations_owner_updated", []any{"o", 2000},
			[]string{"SEARCH conversations USING INTEGER PRIMARY KEY (rowid=?)"}, nil},
		// A bounded step of a conversation's deletion, likewise, through
		// the messages' conversation index; the sweep's look for marked
		// conversations reads only the partial index of those.
		{"delete a step of a conversation's messages", qDeleteConvMsgsStep, "messages_conversation_created", []any{"c", 2000},
			[]string{"SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"}, nil},
		{"marked conversations", qMarkedConvs, "conversations_deleting", []any{100}, nil, nil},
		// The sweep's look for marked users, young first marks left out,
		// reads only the partial index of the marked users.
		{"marked users", qMarked, "users_deleting", []any{int64(1), 100}, nil, nil},
		{"conversation by client id", qConvByCID, "conversations_owner_client_id", []any{"o", "k"}, nil, nil},
		// Reads of messages check once that their conversation is not
		// being deleted, or by primary key per message for one message.
		{"message by id", qMsgByID, "sqlite_autoindex_messages_1", []any{"m", "o"},
			[]string{"SEARCH lc EXISTS USING INDEX sqlite_autoindex_conversations_1 (id=?)"}, nil},
		{"outline", qMsgsOutline, "messages_conversation_created", []any{"c", "o"},
			[]string{"SEARCH conversations EXISTS USING INDEX sqlite_autoindex_conversations_1 (id=?)"}, nil},
		{"user by email", qUserByMail, "users_email", []any{"e"}, nil, nil},
	}
	for _, tc := range cases {
		rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		t.Logf("%s:\n%s", tc.name, all)
		scans := strings.ReplaceAll(all, "SCAN search.message_fts VIRTUAL TABLE", "") // the index itself
		if strings.Contains(all, "SCAN search.message_fts") && strings.Contains(all, "messages_owner_client_id") {
			t.Errorf("%s: a search walks the owner's messages instead of the owner's index range:\n%s", tc.name, all)
		}
		// A streaming answer's chunks are put in order by the aggregate
		// (chunks.go): a sort of one answer's chunks, only while it streams.
		sorts := strings.ReplaceAll(all, "USE TEMP B-TREE FOR group_concat(ORDER BY)", "")
		if !strings.Contains(all, "INDEX "+tc.index) || strings.Contains(sorts, "TEMP B-TREE") || strings.Contains(scans, "SCAN ") {
			t.Fatalf("%s: plan does not use %s cleanly:\n%s", tc.name, tc.index, all)
		}
		for _, line := range tc.also {
			if !slices.Contains(plan, line) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.name, line, all)
			}
		}
		for _, frag := range tc.never {
			if strings.Contains(all, frag) {
				t.Errorf("%s: plan has %q:\n%s", tc.name, frag, all)
			}
		}
	}
}

func TestIContains(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text, needle string
		want         bool
	}{
		{"Hello World", "world", true},
		{"Hello World", "o w", true},
		{"Hello World", "worlds", false},
		{"", "", true},
		{"abc", "", true},
		{"", "a", false},
		{"100% sure", "0%", true},
		{"snakeXcase", "e_c", false},
		{"ÀÉÎ õü", "éî", true},
		{"ПРИВЕТ мир", "привет", true},
		{"plain ascii", "é", false},
		{"KELVIN", "kel", true},
		{"a.*(b", ".*(", true},
		{"abc", "a.c", false},
	}
	for _, tc := range cases {
		if got := icontains(tc.text, strings.ToLower(tc.needle)); got != tc.want {
			t.Errorf("icontains(%q, %q) = %v, want %v", tc.text, tc.needle, got, tc.want)
		}
	}
	// The ASCII fast path agrees with lower-casing everything.
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcABC xyzXYZ%_.*"
	for range 20000 {
		text, needle := randString(r, alphabet, 12), randString(r, alphabet, 3)
		want := strings.Contains(strings.ToLower(text), strings.ToLower(needle))
		if got := icontains(text, strings.ToLower(needle)); got != want {
			t.Fatalf("icontains(%q, %q) = %v, want %v", text, needle, got, want)
		}
	}
}

func randString(r *rand.Rand, alphabet string, max int) string {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := cursor{updatedAt: time.Now().UnixNano(), id: persistence.NewID()}
	enc, err := encodeCursor(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCursor(enc)
	if err != nil || got != c {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, c)
	}
}

// TestListTies checks pagination when several conversations share one
// UpdatedAt (possible after a clock step back or an import): order falls
// back to id, descending, and no page repeats or drops one.
func TestListTies(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := context.Background()
	u := persistence.User{Email: "ties@example.test", Name: "T", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	owner := u.ID
	var want []string
	for i := range 7 {
		c := persistence.Conversation{OwnerID: owner, Title: "tie"}
		if err := s.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID)
		if i == 3 { // one newer conversation in the middle
			continue
		}
		if _, err := s.w.ExecContext(ctx, `UPDATE conversations SET updated_at = 42 WHERE id = ?`, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Expected: the untouched one first, then the tied ones by id descending.
	tied := append(append([]string(nil), want[:3]...), want[4:]...)
	sort.Sort(sort.Reverse(sort.StringSlice(tied)))
	expect := append([]string{want[3]}, tied...)
	for _, limit := range []int{1, 2, 3, 10} {
		var got []string
		cur := ""
		for {
			p, err := s.ListConversations(ctx, owner, persistence.ListQuery{Cursor: cur, Limit: limit, Search: ""})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Conversations {
				got = append(got, c.ID)
			}
			if cur = p.NextCursor; cur == "" {
				break
			}
		}
		if strings.Join(got, ",") != strings.Join(expect, ",") {
			t.Fatalf("limit %d: got %v, want %v", limit, got, expect)
		}
	}
}

// TestSyncModes: the writer syncs the log at every commit (FULL), so a
// write chatd has acknowledged (a send's done, a password change's 200, a
// deletion's 204) survives a power failure; with NORMAL, only the next
// background checkpoint synced it, a second or more later. The search
// file's batches are synced as they commit (FULL) too, so the queue
// entries removed from chatd.db after them never outlive them. The
// readers, which write nothing, and the checkpointer keep NORMAL (in WAL
// mode a checkpoint syncs the log before it copies it, and the database
// file after, whatever the setting).
func TestSyncModes(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		db   *sql.DB
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"writer", s.w, 2}, {"reader", s.r, 1}, {"search reader", s.rs, 1}, {"checkpointer", s.ck, 1}, {"indexer", s.sx, 2}} {
		var got int
		if err := c.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: synchronous %d, want %d", c.name, got, c.want)
		}
	}
}
