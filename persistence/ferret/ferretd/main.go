// Command ferretd runs package ferret's FerretDB as a process of its own,
// for tests: ferret.Start builds it without the race detector and starts
// one per test, so the MongoDB store's tests, built with -race, do not also
// run FerretDB's SQLite backend under it (several times slower, and
// FerretDB's races are not this repository's to find).
//
//	ferretd -dir DIR
//
// It logs to stderr at the level FERRETDB_LOG_LEVEL names (warn by
// default), prints "MONGODB_URI=<uri>" on stdout once the server takes
// connections, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chatd/persistence/ferret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferretd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) != 2 || args[0] != "-dir" {
		return fmt.Errorf("usage: ferretd -dir DIR")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: ferret.LevelFromEnv()}))
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	uri, stopServer, err := ferret.StartServer(sctx, args[1], logger)
	if err != nil {
		return err
	}
	defer stopServer()
	if _, err := fmt.Printf("MONGODB_URI=%s\n", uri); err != nil {
		return fmt.Errorf("print the URI: %w", err)
	}
	<-ctx.Done()
	return nil
}
