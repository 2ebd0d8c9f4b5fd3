package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"chatd/bench/load"
	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/sqlite"
	"chatd/persistence/storetest"
)

// growthSize is one data set of the growth scenario.
type growthSize struct {
	users, conversations, messages int
	samples                        int // timed operations of each kind
}

func (g growthSize) String() string {
	return fmt.Sprintf("%d messages of ~1 KB in %d conversations of %d users", g.messages, g.conversations, g.users)
}

// growthOp is one kind of store operation the scenario times.
type growthOp struct {
	name   string
	target time.Duration // p99 target on the embedded store
	run    func(ctx context.Context, i int) error
	// verify, when set, says after the samples what they did wrong ("":
	// nothing), such as a search that found what is nowhere.
	verify func() string
}

// growth fills the embedded SQLite store with a large data set through the
// normal Store API and times what a user does against it (p99 over many
// operations), then measures how long chatd takes to start on that
// database. The MongoDB store is filled with a much smaller set on the
// in-process FerretDB, whose figures are FerretDB's (it scans whole
// collections), not MongoDB's. The store runs in this process: these are
// the store's own latencies, without HTTP.
func growth(ctx context.Context, e *env, r *report, c config) error {
	lite, startup, err := e.growthSQLite(ctx, c.growthSQLite, c.growthDir, c.growthQuiet)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	rows := growthChecks(r, c, lite)
	r.check(fmt.Sprintf("SQLite, %d messages: start-up to /readyz 200", c.growthSQLite.messages), "< 1s",
		startup.Round(time.Millisecond).String(), startup < time.Second)
	var ferretRows []growthResult
	if !c.growthNoFerret {
		if ferretRows, err = e.growthFerret(ctx, c.growthFerret); err != nil {
			return fmt.Errorf("ferretdb: %w", err)
		}
	}
	for _, m := range ferretRows {
		rows = append(rows, append([]string{"MongoDB store on FerretDB", c.growthFerret.String()}, m.cells()...))
		if m.problem != "" {
			r.problem("growth, MongoDB store on FerretDB: %s: %s", m.op, m.problem)
		}
	}
	r.section("8. Data growth", fmt.Sprintf(`
The store filled through its own API (or, with -growth-dir, a database
filled so by an earlier run), then %d timed operations of each kind
against it, one at a time, in this process (no HTTP), every sample
counted, each kind once the SQLite store's search index has taken in
every message, those the kinds before it wrote included (untimed; the
log says how long it took). No warm-up pass: the operating system's page
cache holds what the fill just wrote or, on a kept database, what the
machine kept of it (the log gives the share), and SQLite's own cache is
8 MiB per connection. The operations: a user's first page of 30
conversations; opening a conversation as GET /api/conversations/:id does
(the conversation, then its newest page of up to 200 messages); a new 1 KB
message; one update of a streaming answer (a new answer every 200
updates, its insert timed too, and the 200th update the final one, which
queues the answer for the search index); a search of a user's messages
for a word in about one message in a hundred and for a word that is
nowhere, their hits checked (the first must find something from 1,000
messages on, the second nothing: a problem of the report otherwise). Start-up is chatd's process started on the filled SQLite
database until /readyz answers 200: %s. The MongoDB rows ran on FerretDB
v1.24 (SQLite underneath, whole collections scanned): they show the
MongoDB store's code working at that size, not MongoDB's speed.

%s`, c.growthSQLite.samples, startup.Round(time.Millisecond),
		table([]string{"store", "data set", "operation", "p50 ms", "p99 ms", "max ms"}, rows)))
	return nil
}

// growthChecks records the SQLite operations' checks and returns their
// table rows; an operation that did something wrong is a problem of the
// report, and its check not measured.
func growthChecks(r *report, c config, lite []growthResult) [][]string {
	var rows [][]string
	for _, m := range lite {
		rows = append(rows, append([]string{"SQLite", c.growthSQLite.String()}, m.cells()...))
		what := fmt.Sprintf("SQLite, %d messages: %s p99", c.growthSQLite.messages, m.op)
		if m.problem != "" {
			r.problem("growth, SQLite: %s: %s", m.op, m.problem)
			r.checks = append(r.checks, check{what: what, target: "< " + m.target.String(), measured: msCell(m.p99), broken: true})
			continue
		}
		r.check(what, "< "+m.target.String(), msCell(m.p99), m.p99 < m.target)
	}
	return rows
}

// growthResult is one operation's timings.
type growthResult struct {
	op            string
	target        time.Duration
	p50, p99, max time.Duration
	problem       string // what the operations did wrong: not a measurement then
}

func (m growthResult) cells() []string {
	return []string{m.op, msCell(m.p50), msCell(m.p99), msCell(m.max)}
}

func msCell(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

// growthSQLite fills a SQLite store, times the operations, closes it and
// times chatd's start-up on it. With growthDir set, the filled database and
// a description of its data set (growth.json) stay there, and a later run
// of the same size reuses them instead of filling again.
func (e *env) growthSQLite(ctx context.Context, size growthSize, growthDir string, indexQuiet time.Duration) ([]growthResult, time.Duration, error) {
	dir := growthDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp(e.dir, "growth-sqlite-"); err != nil {
			return nil, 0, err
		}
		defer os.RemoveAll(dir)
	}
	quiet := slog.New(slog.DiscardHandler)
	s, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "chatd.db"), Logger: quiet, IndexQuiet: indexQuiet})
	if err != nil {
		return nil, 0, err
	}
	res, err := fillAndTime(ctx, s, size, dir)
	if cerr := s.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, 0, err
	}
	startup, err := e.timeStartup(ctx, dir)
	return res, startup, err
}

// savedGrowth is growth.json: the data set a kept database holds.
type savedGrowth struct {
	Size    string            `json:"size"`
	Dataset storetest.Dataset `json:"dataset"`
	Owners  []string          `json:"owners"` // of Dataset.Conversations (not in their JSON)
}

// loadGrowth returns the data set saved in dir for size, if there is one.
func loadGrowth(dir string, size growthSize) (storetest.Dataset, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "growth.json"))
	if errors.Is(err, os.ErrNotExist) {
		return storetest.Dataset{}, false, nil
	}
	if err != nil {
		return storetest.Dataset{}, false, err
	}
	var g savedGrowth
	if err := json.Unmarshal(b, &g); err != nil {
		return storetest.Dataset{}, false, fmt.Errorf("read %s: %w", filepath.Join(dir, "growth.json"), err)
	}
	if g.Size != size.String() || len(g.Owners) != len(g.Dataset.Conversations) {
		return storetest.Dataset{}, false, fmt.Errorf("%s holds %s, not %s: use another -growth-dir", dir, g.Size, size)
	}
	for i, o := range g.Owners {
		g.Dataset.Conversations[i].OwnerID = o
	}
	return g.Dataset, true, nil
}

// saveGrowth writes growth.json for a database just filled in dir.
func saveGrowth(dir string, size growthSize, d storetest.Dataset) error {
	g := savedGrowth{Size: size.String(), Dataset: d}
	for _, c := range d.Conversations {
		g.Owners = append(g.Owners, c.OwnerID)
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "growth.json"), b, 0o600)
}

// growthFerret does the same on the MongoDB store over an in-process FerretDB.
func (e *env) growthFerret(ctx context.Context, size growthSize) ([]growthResult, error) {
	dir, err := os.MkdirTemp(e.dir, "growth-ferret-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)
	uri, stop, err := ferret.StartServer(ctx, dir, quiet)
	if err != nil {
		return nil, err
	}
	defer stop()
	s, err := mongo.Open(ctx, mongo.Options{URI: uri, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer s.Close(context.Background())
	return fillAndTime(ctx, s, size, "")
}

// fillAndTime fills s with size (or, when keep names a directory holding
// a saved data set of that size, reuses it) and times each operation
// size.samples times.
func fillAndTime(ctx context.Context, s persistence.Store, size growthSize, keep string) ([]growthResult, error) {
	var d storetest.Dataset
	reused := false
	if keep != "" {
		var err error
		if d, reused, err = loadGrowth(keep, size); err != nil {
			return nil, err
		}
	}
	if reused {
		logf("growth: reusing %s in %s", size, keep)
	} else {
		start := time.Now()
		var err error
		d, err = storetest.Fill(ctx, s, storetest.BenchOptions{Users: size.users,
			Conversations: size.conversations, Messages: size.messages, MessageBytes: 1024})
		if err != nil {
			return nil, fmt.Errorf("fill: %w", err)
		}
		logf("growth: filled %s in %s", size, time.Since(start).Round(time.Second))
		if keep != "" {
			if err := saveGrowth(keep, size, d); err != nil {
				return nil, err
			}
		}
	}
	if keep != "" {
		logf("growth: %s of the store's files in the page cache before timing", residentShare(keep))
	}
	var out []growthResult
	for _, op := range growthOps(s, d) {
		// Each operation is timed with the search index caught up with
		// what the operations before it wrote, not beside its catching up.
		if err := waitSearchIndex(ctx, s); err != nil {
			return nil, err
		}
		lat := make([]int64, 0, size.samples)
		read := diskReads()
		for i := range size.samples {
			t := time.Now()
			if err := op.run(ctx, i); err != nil {
				return nil, fmt.Errorf("%s: %w", op.name, err)
			}
			lat = append(lat, int64(time.Since(t)))
		}
		if read >= 0 { // what the page cache did not hold, for this process
			read = diskReads() - read
			logf("growth: %s: %.1f MB read from disk, %.1f KB per operation", op.name, float64(read)/1e6, float64(read)/1e3/float64(size.samples))
		}
		slices.Sort(lat)
		m := growthResult{op: op.name, target: op.target,
			p50: time.Duration(load.Percentile(lat, 50)), p99: time.Duration(load.Percentile(lat, 99)),
			max: time.Duration(lat[len(lat)-1])}
		if op.verify != nil {
			m.problem = op.verify()
		}
		out = append(out, m)
	}
	return out, nil
}

// answerUpdates is how many updates a streaming answer of the growth
// scenario gets; the last one completes it.
const answerUpdates = 200

// searchBacklogger is a store whose search index is built behind its
// writes (the SQLite store's, search.go).
type searchBacklogger interface {
	SearchBacklog(ctx context.Context) (int, error)
}

// waitSearchIndex waits until s's search index holds every message, so
// that searches are timed against the index, as on a server that has been
// running, and the indexer's catching up does not compete with the timed
// operations. It logs how long the index took when messages waited.
func waitSearchIndex(ctx context.Context, s persistence.Store) error {
	b, ok := s.(searchBacklogger)
	if !ok {
		return nil
	}
	start, first := time.Now(), -1
	for {
		n, err := b.SearchBacklog(ctx)
		if err != nil {
			return err
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			if first > 0 {
				logf("growth: the search index took in %d waiting messages in %s", first, time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// hitsWanted is what a timed search must find in all.
type hitsWanted int

const (
	anyHits  hitsWanted = iota // not checked
	someHits                   // at least one conversation
	noHits                     // none
)

// rareSure is the fewest messages in which storetest.RareWord is surely
// found (0.99^1000 < 1/20,000).
const rareSure = 1000

// growthOps are the timed operations over the filled data set d.
func growthOps(s persistence.Store, d storetest.Dataset) []growthOp {
	r := rand.New(rand.NewPCG(3, 5))
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = storetest.BenchText(r, 1024)
	}
	user := func(i int) persistence.User { return d.Users[(i*7919)%len(d.Users)] }
	conv := func(i int) persistence.Conversation { return d.Conversations[(i*104729)%len(d.Conversations)] }
	var streaming persistence.Message
	// search times a search for word; after the samples it checks that
	// they found something in all (hits), or nothing (noHits), or does
	// not check (anyHits).
	search := func(name, word string, want hitsWanted) growthOp {
		hits := 0
		return growthOp{name: name, target: 20 * time.Millisecond, run: func(ctx context.Context, i int) error {
			p, err := s.ListConversations(ctx, user(i).ID, persistence.ListQuery{Limit: 30, Search: word})
			hits += len(p.Conversations)
			return err
		}, verify: func() string {
			if want == someHits && hits == 0 || want == noHits && hits > 0 {
				return fmt.Sprintf("the searches for %q found %d conversations in all", word, hits)
			}
			return ""
		}}
	}
	// The rare word is in about one message in a hundred: a data set of
	// rareSure messages or more holds it (all but once in 20,000), a
	// smaller one (the smoke run's) may not, and its searches are only
	// timed.
	rare := anyHits
	if d.Messages >= rareSure {
		rare = someHits
	}
	return []growthOp{
		{"list a user's conversations", 2 * time.Millisecond, func(ctx context.Context, i int) error {
			_, err := s.ListConversations(ctx, user(i).ID, persistence.ListQuery{Limit: 30})
			return err
		}, nil},
		{"open a conversation", 2 * time.Millisecond, func(ctx context.Context, i int) error {
			c := conv(i) // as GET /api/conversations/:id: the conversation, then its newest page
			if _, err := s.Conversation(ctx, c.OwnerID, c.ID); err != nil {
				return err
			}
			_, err := s.MessagePage(ctx, c.OwnerID, c.ID, persistence.PageQuery{})
			return err
		}, nil},
		{"append a message", 2 * time.Millisecond, func(ctx context.Context, i int) error {
			c := conv(i)
			m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: persistence.RoleUser,
				Content: texts[i%len(texts)], Status: persistence.StatusComplete}
			return s.InsertMessage(ctx, &m)
		}, nil},
		{"update a streaming answer", 2 * time.Millisecond, func(ctx context.Context, i int) error {
			if i%answerUpdates == 0 { // a new answer every 200 updates (its insert is timed too)
				c := conv(i)
				streaming = persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID,
					Role: persistence.RoleAssistant, Model: "bench", Status: persistence.StatusStreaming}
				if err := s.InsertMessage(ctx, &streaming); err != nil {
					return err
				}
			}
			up := persistence.MessageUpdate{ID: streaming.ID, Append: " some streamed text", At: time.Now()}
			if i%answerUpdates == answerUpdates-1 { // the final update: the answer enters the search index
				up.Status, up.FinishReason = persistence.StatusComplete, "stop"
			}
			_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{up})
			return err
		}, nil},
		search("search a user's messages (rare word)", storetest.RareWord, rare),
		search("search a user's messages (no match)", "nosuchwordanywhere", noHits),
	}
}

// timeStartup starts chatd on the data directory dir and returns the time
// from the process's start to /readyz answering 200.
func (e *env) timeStartup(ctx context.Context, dir string) (time.Duration, error) {
	start := time.Now()
	p, err := startProc(ctx, "chatd-growth", e.bins.chatd, nil,
		[]string{"CHATD_ADDR=127.0.0.1:0", "CHATD_DATA_DIR=" + dir}, e.dir,
		map[string]*regexp.Regexp{"addr": chatdAddrRE})
	if err != nil {
		return 0, err
	}
	defer p.stop()
	url := "http://" + p.addrs["addr"] + "/readyz"
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > time.Minute {
			return 0, fmt.Errorf("chatd on %s not ready after a minute", dir)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
