// Command devstack runs, on this machine, what several chatd instances
// share: an in-process FerretDB (the MongoDB wire protocol over SQLite
// files) and a NATS server with JetStream, both on loopback. It is for
// trying a cluster locally and for the browser tests; it is not a
// production setup (docs/scale.md is).
//
//	go run ./cmd/devstack -dir /tmp/devstack
//
// Once both accept connections it prints
//
//	MONGODB_URI=mongodb://127.0.0.1:<port>/
//	CHATD_NATS_URL=nats://127.0.0.1:<port>
//
// and runs until SIGINT or SIGTERM. Start each chatd with these two lines,
// the same JWT_SECRET and its own CHATD_ADDR. With -only mongo or -only nats
// it runs and prints one of the two: in one process the two share one Go
// runtime, so FerretDB's work (it scans whole collections) delays NATS's,
// which production, with NATS on machines of its own, does not see; the
// bus benchmark runs them apart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"chatd/persistence/ferret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Stdout)))
}

// errUsage marks an error in devstack's arguments.
var errUsage = errors.New("usage")

// exitCode reports how devstack ends after run returned err: 0 after -h
// (the flag package has printed the usage), 2 for bad arguments (the error
// is printed), 1 when a service failed (the error is logged).
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		return 2
	default:
		slog.Error("devstack stopped", slog.String("err", err.Error()))
		return 1
	}
}

// run starts FerretDB and NATS in dir, prints their URLs to out and serves
// until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the data (default: a new temporary one, removed on exit)")
	only := fs.String("only", "", `run one of the two: "mongo" or "nats" (default: both)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("devstack: %w: %w", errUsage, err) // the flag package has printed the usage
	}
	if fs.NArg() > 0 { // go run ./cmd/devstack /tmp/x would run in a temporary directory, removed on exit
		return fmt.Errorf("devstack: %w: unexpected argument %q: name the data directory with -dir %s", errUsage, fs.Arg(0), fs.Arg(0))
	}
	if *only != "" && *only != "mongo" && *only != "nats" {
		return fmt.Errorf("devstack: %w: -only %q: want mongo or nats", errUsage, *only)
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "chatd-devstack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	for _, sub := range []string{"mongo", "nats"} {
		if err := os.MkdirAll(filepath.Join(*dir, sub), 0o700); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if *only != "nats" {
		uri, stopMongo, err := ferret.StartServer(sctx, filepath.Join(*dir, "mongo"), nil)
		if err != nil {
			return err
		}
		defer stopMongo()
		fmt.Fprintf(out, "MONGODB_URI=%s\n", uri)
	}
	if *only != "mongo" {
		ns, err := startNATS(filepath.Join(*dir, "nats"))
		if err != nil {
			return err
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown()
		fmt.Fprintf(out, "CHATD_NATS_URL=%s\n", ns.ClientURL())
	}
	<-ctx.Done()
	return nil
}

// startNATS runs one NATS server with JetStream storing in dir, on a random
// loopback port, and waits until it takes clients.
func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "devstack",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
		JetStream:  true,
		StoreDir:   dir,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server did not start within 30s")
	}
	return ns, nil
}
