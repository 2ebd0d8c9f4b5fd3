package api_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportMemory (issue 10, item 12): 20 concurrent exports of a
// conversation holding a 6 MB answer add at most 50 MB to the Go heap, in
// both formats, on a server that exported it before (SQLite's page caches,
// bounded by sqlite.Options.CacheSizeKiB, already full). Not parallel: it measures the process. The peaks are
// logged: go test -run TestExportMemory -v ./transport/api/
func TestExportMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 6 MB answer")
	}
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	answer := strings.Repeat("streamed tokens, \"quoted\" <html> & émoji 🙂\n", 6<<20/47)
	c, _ := e.conversation(t, owner, "write me a very long answer", answer)
	want := len(answer) // about 6 MB; each export holds it at least once
	// Warm up as a running server is: the read connections' page caches
	// (bounded by CacheSizeKiB) fill with the answer's pages.
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); download(t, e, owner, "/api/conversations/"+c.ID+"/export?format=json") }()
	}
	wg.Wait()
	t.Logf("4 concurrent exports to warm up: %s", time.Since(start))
	exportsWithin(t, e, owner, c.ID, want, fmt.Sprintf("a %d-byte answer", want))
}

// TestExportReasoningMemory: 20 concurrent exports of a conversation of
// 24 answers, each with 256 KiB of reasoning (CHATD_MAX_ANSWER_BYTES's
// default: 6 MB in all), add at most 50 MB to the Go heap, in both
// formats: the reasoning is read in pieces like the text, never the
// whole conversation's at once (docs/api.md: "at most 256 KiB of a
// message's text at a time"). Not parallel: it measures the process.
func TestExportReasoningMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 6 MB of reasoning")
	}
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	const answers, size = 24, 256 << 10
	c, _ := e.conversation(t, owner)
	thought := strings.Repeat("thinking, \"aloud\" <b> & é 🙂\n", size/32)[:size-100]
	parent := ""
	for i := range 2 * answers {
		m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: parent,
			Role: persistence.RoleUser, Content: "why?", Status: persistence.StatusComplete}
		if i%2 == 1 {
			m.Role, m.Content, m.Reasoning = persistence.RoleAssistant, "because.", thought
		}
		if err := e.store.InsertMessage(t.Context(), &m); err != nil {
			t.Fatal(err)
		}
		parent = m.ID
	}
	download(t, e, owner, "/api/conversations/"+c.ID+"/export?format=json") // warm up
	exportsWithin(t, e, owner, c.ID, answers*len(thought),
		fmt.Sprintf("%d answers of %d bytes of reasoning", answers, len(thought)))
}

// exportsWithin runs 20 concurrent exports of the conversation id, in
// each format, and fails when the Go heap grew by more than 50 MB during
// them; each export must be at least want bytes. The peaks are logged.
func exportsWithin(t *testing.T, e *apiEnv, owner, id string, want int, what string) {
	t.Helper()
	for _, format := range []string{"json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			path := "/api/conversations/" + id + "/export?format=" + format
			heap, rss := peakDuring(t, func() {
				var wg sync.WaitGroup
				for range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if n := download(t, e, owner, path); n < int64(want) {
							t.Errorf("export of %d bytes, want at least %d", n, want)
						}
					}()
				}
				wg.Wait()
			})
			t.Logf("20 concurrent %s exports of %s: peak heap +%.1f MB, peak RSS +%.1f MB",
				format, what, float64(heap)/(1<<20), float64(rss)/(1<<20))
			// The resident set also holds what SQLite's read connections
			// materialise (at most one whole text per connection, bounded by
			// the read pool) and freed memory the runtime has not returned
			// yet, which depends on the machine's load: it is logged, not
			// asserted.
			if heap > 50<<20 {
				t.Fatalf("peak heap grew by %.1f MB, want at most 50 MB", float64(heap)/(1<<20))
			}
		})
	}
}

// download reads the export to the end, keeping none of it.
func download(t *testing.T, e *apiEnv, user, path string) int64 {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("X-User", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Errorf("export: %d, %v", res.StatusCode, err)
	}
	return n
}

// peakDuring runs fn and returns how far the heap in use and the resident
// set size rose above their level before it, at their peaks (sampled
// every few milliseconds).
func peakDuring(t *testing.T, fn func()) (heap, rss int64) {
	t.Helper()
	// Garbage is collected soon (a heap goal 10% over the live heap, not
	// 100%): the peak then tracks what the exports hold, not how far the
	// collector lags behind them, which a loaded machine (CI, beside
	// other packages' tests) stretched to 53 MB where an idle one saw 31.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap, baseRSS := int64(ms.HeapInuse), residentBytes(t)
	var peakHeap, peakRSS atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap.Store(max(peakHeap.Load(), int64(ms.HeapInuse)))
			peakRSS.Store(max(peakRSS.Load(), residentBytes(t)))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	<-sampled
	return peakHeap.Load() - baseHeap, peakRSS.Load() - baseRSS
}

// residentBytes is the process's resident set size (Linux), or 0.
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
