package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopSignals returns a context cancelled by the first SIGINT, SIGTERM or
// SIGHUP, which starts the graceful shutdown (and is logged, naming the
// signal). A second SIGINT or SIGTERM ends the process at once with exit
// status 1 and a log line: Ctrl+C twice, or an operator's second kill,
// must not wait out CHATD_SHUTDOWN_GRACE. stop releases the signals.
//
// SIGHUP stops chatd as SIGTERM does. chatd has nothing to reload (its
// settings are environment variables, read once at start: a restart
// applies them), and neither systemd (the unit has no ExecReload) nor pm2
// sends it; it comes when the terminal chatd runs in goes away (an SSH
// session closed on make run), and Go's default then was to exit on the
// spot, with no shutdown and no log line: answers left streaming, tabs
// cut with 1006. Ignoring it would keep a server running whose terminal,
// and the logs written to it, are gone. A SIGHUP never counts as the
// second signal: a terminal that hangs up may deliver it more than once
// (the shell passes its own on to its jobs, besides the terminal's), and
// that is no operator in a hurry.
//
// SIGPIPE is ignored: chatd's logs go to stdout, and whatever reads them
// may go away (a FIFO's reader killed, pm2's daemon killed, `chatd | cat`
// hung up with its terminal). Go's default then is to exit with SIGPIPE
// at the first write to stdout or stderr, with no shutdown (the signal's
// own log line was that write); ignored, the write fails with EPIPE, the
// log line is lost, and the shutdown goes on as for any stop.
func stopSignals(logger *slog.Logger) (ctx context.Context, stop func()) {
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			logger.Info("signal: stopping", slog.String("signal", sig.String()))
			cancel()
		case <-done:
			return
		}
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					logger.Info("hangup while stopping: the shutdown goes on", slog.String("signal", sig.String()))
					continue
				}
				logger.Error("second signal: exiting without finishing the shutdown", slog.String("signal", sig.String()))
				os.Exit(1)
			case <-done:
				return
			}
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
