// Command relay serves the benchmarks' baseline B (package chatd/bench/relay):
// a WebSocket that relays an OpenAI-compatible upstream's SSE, one frame per
// chunk, with no authentication and no database.
//
//	relay -addr 127.0.0.1:0 -upstream http://127.0.0.1:8081/v1 [-pprof 127.0.0.1:0]
//
// It logs its listening address ("relay listening", addr=...) and serves
// the WebSocket at /ws. SIGINT or SIGTERM stop it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chatd/bench/relay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "relay:", err)
		}
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	upstream := fs.String("upstream", "http://127.0.0.1:8081/v1", "API root of the OpenAI-compatible upstream")
	pprofAddr := fs.String("pprof", "", "loopback address to serve /debug/pprof/ on (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux := http.NewServeMux()
	mux.Handle("/ws", relay.New(relay.Options{Upstream: *upstream, Logger: log}))
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr, stderr); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(stderr, "relay listening addr=%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// servePprof serves the runtime profiles on their own listener until ctx ends.
func servePprof(ctx context.Context, addr string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stderr, "pprof listening addr=%s\n", ln.Addr())
	return nil
}
