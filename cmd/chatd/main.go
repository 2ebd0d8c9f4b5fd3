// Command chatd is the chat server: REST API, live channel (WebSocket and
// SSE), and the web front end, over the embedded SQLite store or MongoDB.
// It is configured through environment variables only (see README.md).
package main

import (
	"log/slog"
	"os"
)

func main() {
	if code, ok := checkArgs(os.Args[1:], os.Stdout, os.Stderr); !ok {
		os.Exit(code)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := stopSignals(logger)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, nil); err != nil {
		stop()
		reportFailure(output{os.Stdout, isTerminal(os.Stdout)}, output{os.Stderr, isTerminal(os.Stderr)}, err)
		os.Exit(1)
	}
}
