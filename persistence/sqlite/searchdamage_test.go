package sqlite

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"chatd/internal/syncbuf"
	"chatd/persistence"
)

// TestSearchFileDamaged: a damaged search file (not a database at all,
// or its second half overwritten) neither stops the start nor fails a
// search: Open succeeds, searches find every message, the index is
// rebuilt (it holds every message again and SQLite finds the file whole),
// and the damage is logged once as an error naming the file. Before, the
// garbage file failed Open ("file is not a database"), and the overwritten
// one failed every search of 3 characters or more, for good.
func TestSearchFileDamaged(t *testing.T) {
	t.Parallel()
	damages := map[string]func(t *testing.T, path string){
		"not a database": func(t *testing.T, path string) {
			writeAt(t, path, 0, garbage(64<<10))
		},
		"second half overwritten": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			writeAt(t, path, fi.Size()/2, garbage(int(fi.Size()-fi.Size()/2)))
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path, f := unmanagedFixture(t)
			const n = 400
			for i := range n {
				f.insert(t, fmt.Sprintf("message %d about the pangolin number %d, %x", i, i*7919, i*104729), persistence.StatusComplete)
			}
			waitIndexed(t, f.s)
			closeNow(t, f.s)
			damage(t, searchPath(path))

			logs := &syncbuf.Buffer{}
			f.s = openLogged(t, path, logs)
			t.Cleanup(func() { closeNow(t, f.s) })
			for _, q := range []string{"pangolin", "number 7919,", fmt.Sprintf("%x", 399*104729)} {
				if !f.found(t, q) {
					t.Errorf("search %q found nothing", q)
				}
			}
			waitIndexed(t, f.s)
			if got := indexed(t, f.s); got != n {
				t.Errorf("rebuilt index holds %d messages, want %d", got, n)
			}
			var check string
			if err := f.s.r.QueryRowContext(ctx, `PRAGMA search.quick_check`).Scan(&check); err != nil || check != "ok" {
				t.Errorf("search file check: %q, %v; want ok", check, err)
			}
			if !f.found(t, "about the pangolin") || f.found(t, "pangolin about") {
				t.Error("search through the rebuilt index is wrong")
			}
			out := logs.String()
			if c := strings.Count(out, "its file is damaged"); c != 1 || !strings.Contains(out, "level=ERROR") ||
				!strings.Contains(out, searchPath(path)) {
				t.Errorf("damage logged %d times, want once as an error naming the file; logs:\n%s", c, out)
			}
		})
	}
}

// garbage returns n bytes that are no SQLite page.
func garbage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

// writeAt writes b into the file at path from offset off.
func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexRetry: the indexer waits a second after its first failure,
// twice as long after each next one, up to a minute (before, a second
// after every failure: a damaged file logged a failure every second).
func TestIndexRetry(t *testing.T) {
	t.Parallel()
	for fails, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		if got := indexRetry(fails); got != want {
			t.Errorf("wait after %d failures: %v, want %v", fails+1, got, want)
		}
	}
	if got := indexRetry(100); got != time.Minute {
		t.Errorf("wait after 101 failures: %v, want a minute", got)
	}
}
