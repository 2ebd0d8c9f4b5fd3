package ferret

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// LogLevelEnv names the environment variable that sets the level of the
// FerretDB logs Start routes to the test log: debug, info, warn (the
// default) or error.
const LogLevelEnv = "FERRETDB_LOG_LEVEL"

// startTimeout bounds how long Start waits for FerretDB to come up.
const startTimeout = time.Minute

// Start starts a FerretDB for one test, with its SQLite files in a
// temporary directory and its logs written to tb.Log, and returns its
// MongoDB URI. The server stops (and its directory is removed) when the test
// ends; cleanups run last-in first-out, so a client opened after Start and
// closed in its own tb.Cleanup disconnects before the server stops. Every
// call starts an independent server: parallel tests may each have their own.
func Start(tb testing.TB) (uri string) {
	tb.Helper()
	dir := tb.TempDir() // registered first, so removed after the server stops
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	uri, stop, err := StartServer(ctx, dir, slog.New(NewTestHandler(tb, levelFromEnv())))
	if err != nil {
		tb.Fatalf("start ferretdb: %v", err)
	}
	tb.Cleanup(stop)
	return uri
}

// levelFromEnv reads LogLevelEnv; unknown or empty values mean warn.
func levelFromEnv() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(os.Getenv(LogLevelEnv)))); err != nil {
		return slog.LevelWarn
	}
	return l
}
