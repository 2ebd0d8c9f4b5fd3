package sqlite_test

import (
	"path/filepath"
	"testing"

	"chatd/persistence"
	"chatd/persistence/storetest"
)

// BenchmarkStore runs the shared store benchmarks on a SQLite file:
//
//	go test -run '^$' -bench BenchmarkStore -benchtime 2s ./persistence/sqlite/
func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) persistence.Store {
		return openAt(b, filepath.Join(b.TempDir(), "chatd.db"))
	})
}
