// Command chatd is the chat server: REST API, live channel (WebSocket and
// SSE), and the web front end, over the embedded SQLite store or MongoDB.
// It is configured through environment variables only (see README.md).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, nil); err != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error("chatd stopped", slog.String("err", err.Error()))
		stop()
		os.Exit(1)
	}
}
