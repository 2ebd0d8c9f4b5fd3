package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/bench/load"
	"chatd/cmd/chatd/app"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
	"chatd/persistence/counting"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/sqlite"
	"chatd/transport/auth"
)

// writeCost is what one answer cost the database.
type writeCost struct {
	tokens, text    int
	writes, updates int64
	byMethod        map[string]int64
	appended        int64   // bytes of text passed to the store
	wire            int64   // MongoDB: write commands
	wireBytes       int64   // MongoDB: their BSON size
	wireMaxMs       float64 // MongoDB (FerretDB): the slowest write command
	wal             int64   // SQLite: bytes appended to the write-ahead log
	elapsed         float64 // seconds from the prompt to the done frame
}

// writes streams answers of each length through chatd, served in this
// process over the SQLite store and over the MongoDB store on an
// in-process FerretDB, and counts the writes at the store boundary and,
// for MongoDB, with the driver's command monitor. Counts and bytes, not
// timings, are the point here, so the server runs in-process.
func writes(ctx context.Context, e *env, r *report, c config) error {
	var rows [][]string
	for _, store := range []string{"sqlite", "mongo"} {
		costs, err := e.storeWrites(ctx, store, c)
		if err != nil {
			return fmt.Errorf("writes on %s: %w", store, err)
		}
		for mode, list := range costs {
			for _, w := range list {
				rows = append(rows, writeRow(store, mode, c, w))
			}
		}
		writeChecks(r, store, costs[0])
	}
	r.section("4. Database writes per answer", fmt.Sprintf(`
One answer at a time through chatd's WebSocket, on a fresh conversation (the
user message and the answer's row are inserted, then the batching writer
checkpoints the text at most every 300 ms and writes the final state).
"burst": the fake upstream sends the tokens as fast as it can; "%s": the
answer is spread over %s whatever its length. Writes are store calls
(counting wrapper); bytes are the text handed to the store. MongoDB runs on
an in-process FerretDB: its commands and their BSON size are what the
driver's command monitor saw, and its timings are FerretDB's (SQLite
underneath), not MongoDB's. SQLite WAL is the growth of the write-ahead logs
of chatd.db and of its search index chatd-search.db (both checkpointed to
zero before each answer; the search index is written behind the answer's
final state, and waited for): the pages SQLite really wrote.

%s
How checkpoints avoid rewriting the text: every checkpoint and the final
update carry only the text appended since the previous write
(MessageUpdate.Append). MongoDB stores a message's text as an array of
chunks and appends with $push, so the bytes sent grow with the text, not
with the number of checkpoints. SQLite stores each checkpoint as a row of
its own in a table of chunks (message_chunks), inserted at that table's end
whatever the answer, and the final update takes the chunks into the
message's row once and deletes them: a checkpoint writes a few pages (the
database header, the table's last pages, a page of its index, the free-page
list's trunk), shared by every answer checkpointed in the same transaction,
not the answer's row with its whole text so far. A long, slow answer costs a few pages per checkpoint and
its text twice (the paced rows); a burst answer has no checkpoint, and its
WAL beyond the shortest answer's is its row and the search index's entries
for its text.`, pacedName(c), c.writePaced,
		table([]string{"store", "mode", "tokens", "text bytes", "store writes", "by method", "message updates",
			"appended bytes", "MongoDB write cmds", "their bytes", "slowest cmd ms (FerretDB)", "SQLite WAL bytes", "answer s"}, rows)))
	return nil
}

func pacedName(c config) string { return "paced " + c.writePaced.String() }

func writeRow(store string, mode int, c config, w writeCost) []string {
	m := "burst"
	if mode == 1 {
		m = pacedName(c)
	}
	dash := func(v int64, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprint(v)
	}
	return []string{store, m, fmt.Sprint(w.tokens), fmt.Sprint(w.text), fmt.Sprint(w.writes), methods(w.byMethod),
		fmt.Sprint(w.updates), fmt.Sprint(w.appended), dash(w.wire, store == "mongo"), dash(w.wireBytes, store == "mongo"),
		map[bool]string{true: f1(w.wireMaxMs), false: "-"}[store == "mongo"], dash(w.wal, store == "sqlite"), f2(w.elapsed)}
}

func methods(m map[string]int64) string {
	var parts []string
	for _, k := range []string{"InsertMessages", "InsertMessage", "ApplyMessageUpdates", "UpdateConversation", "CreateConversation"} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// writeChecks applies the targets to the burst series: the same small
// count for every length, and bytes within 1.5x the text plus the fixed
// cost of the shortest answer.
func writeChecks(r *report, store string, burst []writeCost) {
	if len(burst) < 2 {
		return
	}
	same, small := true, true
	counts := make([]string, len(burst))
	for i, w := range burst {
		counts[i] = fmt.Sprint(w.writes)
		same = same && w.writes == burst[0].writes
		small = small && w.writes <= 6
	}
	r.check(store+": store writes per answer, "+lengths(burst), "the same small count", strings.Join(counts, ", "), same && small)
	bytes := func(w writeCost) int64 {
		if store == "mongo" {
			return w.wireBytes
		}
		return w.wal
	}
	fixed, ok := bytes(burst[0]), true
	var got []string
	for _, w := range burst[1:] {
		ok = ok && float64(bytes(w)) <= 1.5*float64(w.text)+float64(fixed)
		got = append(got, fmt.Sprintf("%.2fx", float64(bytes(w)-fixed)/float64(w.text)))
	}
	what := map[string]string{"mongo": "MongoDB command bytes", "sqlite": "SQLite WAL bytes"}[store]
	r.check(store+": "+what+" beyond the shortest answer's, per text byte", "<= 1.5x", strings.Join(got, ", "), ok)
}

func lengths(ws []writeCost) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = fmt.Sprint(w.tokens)
	}
	return strings.Join(s, "/") + " tokens"
}

// writeServer is chatd in this process over one store.
type writeServer struct {
	store  *counting.Store
	url    string
	dbPath string
	sqlite *sqlite.Store // the SQLite store, nil on MongoDB
	mon    *cmdCounter
	user   load.User
	close  func()
}

// storeWrites measures each answer length in burst mode (index 0) and paced (1).
func (e *env) storeWrites(ctx context.Context, store string, c config) ([2][]writeCost, error) {
	var out [2][]writeCost
	s, err := e.writeServer(ctx, store)
	if err != nil {
		return out, err
	}
	defer s.close()
	for mode := range 2 {
		for _, n := range c.writeTokens {
			delay := time.Duration(0)
			if mode == 1 {
				delay = c.writePaced / time.Duration(n)
			}
			w, err := s.answer(ctx, n, delay)
			if err != nil {
				return out, err
			}
			out[mode] = append(out[mode], w)
		}
	}
	return out, nil
}

func (e *env) writeServer(ctx context.Context, store string) (*writeServer, error) {
	dir, err := os.MkdirTemp(e.dir, "writes-"+store+"-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	ws := &writeServer{mon: &cmdCounter{}}
	var inner persistence.Store
	var stops []func()
	if store == "mongo" {
		uri, stop, err := ferret.StartServer(ctx, dir, quiet)
		if err != nil {
			return nil, err
		}
		stops = append(stops, stop)
		s, err := mongo.Open(ctx, mongo.Options{URI: uri, Monitor: ws.mon.monitor(), Logger: quiet})
		if err != nil {
			stop()
			return nil, err
		}
		inner = s
	} else {
		path := filepath.Join(dir, "chatd.db")
		// The log's size counts what was written only while nothing
		// checkpoints it: no background checkpoints here (the bytes an
		// answer writes do not depend on who checkpoints them).
		s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: quiet, CheckpointInterval: -1})
		if err != nil {
			return nil, err
		}
		inner, ws.dbPath, ws.sqlite = s, path, s
	}
	ws.store = counting.Wrap(inner)
	a, err := app.New(app.Config{Store: ws.store, Logger: quiet,
		Model:    openai.New(openai.Options{APIKey: "bench", BaseURL: e.fakeURL, Logger: quiet}),
		Auth:     auth.Options{Secret: []byte(strings.Repeat("b", 32))},
		Accounts: auth.AccountOptions{BcryptCost: 4}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: a.Handler()}
	go func() { _ = srv.Serve(ln) }()
	ws.url = "http://" + ln.Addr().String()
	ws.close = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		_ = srv.Shutdown(sctx)
		_ = ws.store.Close(sctx)
		for _, stop := range stops {
			stop()
		}
	}
	users, err := load.Register(ctx, ws.url, 1, 1, "writes")
	if err != nil {
		ws.close()
		return nil, err
	}
	ws.user = users[0]
	return ws, nil
}

// answer streams one answer of n tokens, delay apart, and returns its cost.
func (s *writeServer) answer(ctx context.Context, n int, delay time.Duration) (writeCost, error) {
	conv, err := load.CreateConversation(ctx, s.url, s.user.Token)
	if err != nil {
		return writeCost{}, err
	}
	c, err := load.DialChatd(ctx, s.url, s.user.Token, false)
	if err != nil {
		return writeCost{}, err
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	if err := s.truncateWAL(ctx); err != nil {
		return writeCost{}, err
	}
	before, mon := s.store.Writes(), s.mon.snapshot()
	start := time.Now()
	prompt := fmt.Sprintf(`{"type":"send","id":"w","conversationId":%q,"content":"writes [[fake tokens=%d delay=%s]]"}`, conv, n, delay)
	if err := c.Write(ctx, websocket.MessageText, []byte(prompt)); err != nil {
		return writeCost{}, err
	}
	text, err := readAnswer(ctx, c, fakeai.ExpectedText(fakeai.Config{Tokens: n}))
	if err != nil {
		return writeCost{}, err
	}
	after, mon2 := s.store.Writes(), s.mon.snapshot()
	w := writeCost{tokens: n, text: text, elapsed: time.Since(start).Seconds(),
		writes: after.Writes - before.Writes, updates: after.MessageUpdates - before.MessageUpdates,
		appended: after.AppendedBytes - before.AppendedBytes, byMethod: map[string]int64{},
		wire: mon2.count - mon.count, wireBytes: mon2.bytes - mon.bytes, wireMaxMs: mon2.maxMs}
	for k, v := range after.ByMethod {
		if d := v - before.ByMethod[k]; d > 0 {
			w.byMethod[k] = d
		}
	}
	if s.dbPath != "" {
		// The search index is written behind the store's writes, into a
		// file of its own: wait for it, and count its log too.
		if err := waitSearchIndex(ctx, s.sqlite); err != nil {
			return w, err
		}
		for _, p := range []string{s.dbPath, sqlite.SearchPath(s.dbPath)} {
			if fi, err := os.Stat(p + "-wal"); err == nil {
				w.wal += fi.Size()
			}
		}
	}
	return w, nil
}

// readAnswer reads frames until the answer's done and returns its length in
// bytes; the deltas' text, stamps removed, must be want exactly, each
// delta's seq the length so far and the done's the whole length.
func readAnswer(ctx context.Context, c *websocket.Conn, want string) (int, error) {
	var text strings.Builder
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return 0, err
		}
		var f struct {
			Type, Text, Status string
			Seq                int
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return 0, fmt.Errorf("frame %.200s: %w", data, err)
		}
		switch f.Type {
		case "error":
			return 0, errors.New(string(data))
		case "delta":
			text.WriteString(f.Text)
			if f.Seq != text.Len() {
				return 0, fmt.Errorf("delta seq %d after %d bytes", f.Seq, text.Len())
			}
		case "done":
			if f.Status != "complete" {
				return 0, fmt.Errorf("answer ended: %.200s", data)
			}
			if f.Seq != text.Len() {
				return 0, fmt.Errorf("done seq %d after %d bytes of deltas", f.Seq, text.Len())
			}
			if got := fakeai.StripStamps(text.String()); got != want {
				return 0, fmt.Errorf("answer of %d bytes is not the %d the fake streamed: %.80q", len(got), len(want), got)
			}
			return text.Len(), nil
		}
	}
}

// truncateWAL checkpoints the SQLite write-ahead log into the database and
// empties it, so its size afterwards is what the next answer wrote.
func (s *writeServer) truncateWAL(ctx context.Context) error {
	if s.dbPath == "" {
		return nil
	}
	if err := waitSearchIndex(ctx, s.sqlite); err != nil {
		return err
	}
	for _, p := range []string{s.dbPath, sqlite.SearchPath(s.dbPath)} {
		if err := truncateWAL(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// truncateWAL checkpoints and empties the write-ahead log of the database at path.
func truncateWAL(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	var busy, logFrames, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint the WAL of %s: %w", path, err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint the WAL of %s: the database was busy", path)
	}
	return nil
}

// cmdCounter counts the MongoDB driver's write commands.
type cmdCounter struct {
	mu    sync.Mutex
	count int64
	bytes int64
	maxMs float64
}

type cmdSnapshot struct {
	count, bytes int64
	maxMs        float64
}

func isWrite(name string) bool {
	switch name {
	case "insert", "update", "delete", "findAndModify":
		return true
	}
	return false
}

func (m *cmdCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, ev *event.CommandStartedEvent) {
			if isWrite(ev.CommandName) {
				m.mu.Lock()
				m.count++
				m.bytes += int64(len(ev.Command))
				m.mu.Unlock()
			}
		},
		Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
			if isWrite(ev.CommandName) {
				m.mu.Lock()
				m.maxMs = max(m.maxMs, float64(ev.Duration)/1e6)
				m.mu.Unlock()
			}
		},
	}
}

// snapshot returns the counts and resets the slowest command's duration.
func (m *cmdCounter) snapshot() cmdSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := cmdSnapshot{m.count, m.bytes, m.maxMs}
	m.maxMs = 0
	return s
}
