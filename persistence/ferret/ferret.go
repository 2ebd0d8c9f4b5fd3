// Package ferret starts FerretDB (v1, SQLite backend), which speaks the
// MongoDB wire protocol, so the MongoDB store and the end-to-end tests run
// against a real MongoDB-compatible server without a mongod: StartServer
// runs it in the calling process (devstack, the benchmarks), Start runs it
// for one test as a process of its own (the ferretd command).
//
// FerretDB is a test double for MongoDB with known limits (no transactions,
// no change streams, no TTL or text indexes, whole-collection scans for any
// filter but an exact _id): code tested here must still be written for real
// MongoDB.
package ferret

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// newMu serializes ferretdb.New: it writes a package-global version field,
// which would be a data race when parallel tests start instances together.
var newMu sync.Mutex

// StartServer starts FerretDB storing its SQLite files in dir (which must
// exist) and listening on a random loopback TCP port. It returns a MongoDB
// URI for it and a stop function that shuts the server down and waits until
// every goroutine it started has returned. Clients should disconnect before
// stop is called: connections still open get a few seconds of grace.
//
// logger receives FerretDB's logs; nil discards them. ctx only bounds the
// start: the server runs until stop is called.
func StartServer(ctx context.Context, dir string, logger *slog.Logger) (uri string, stop func(), err error) {
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("start ferretdb: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", nil, fmt.Errorf("start ferretdb: data directory %q is not a directory", dir)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := newFerret(dir, logger)
	if err != nil {
		return "", nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx) // always nil: it returns when runCtx is cancelled
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	return f.MongoDBURI(), stop, nil
}

// newFerret builds (but does not run) an instance over the SQLite files in dir.
func newFerret(dir string, logger *slog.Logger) (*ferretdb.FerretDB, error) {
	// FerretDB takes the directory as a file: URL, where a relative path's
	// first element would read as a host.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start ferretdb in %s: %w", dir, err)
	}
	// synchronous(normal) skips the fsync on every commit (WAL mode keeps the
	// files consistent): test data need not survive a power cut.
	q := url.Values{"_pragma": {"synchronous(normal)"}}
	sqliteURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs) + "/", RawQuery: q.Encode()}).String()

	newMu.Lock()
	defer newMu.Unlock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return nil, fmt.Errorf("start ferretdb in %s: %w", dir, err)
	}
	return f, nil
}
