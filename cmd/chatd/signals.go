package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopSignals returns a context cancelled by the first SIGINT or SIGTERM,
// which starts the graceful shutdown. A second one ends the process at
// once with exit status 1 and a log line: Ctrl+C twice, or an operator's
// second kill, must not wait out CHATD_SHUTDOWN_GRACE. stop releases the
// signals.
func stopSignals(logger *slog.Logger) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			logger.Error("second signal: exiting without finishing the shutdown", slog.String("signal", sig.String()))
			os.Exit(1)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			cancel()
			close(done)
		})
	}
}
