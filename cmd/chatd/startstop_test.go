package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"chatd/internal/silentserver"
	"chatd/internal/syncbuf"
)

// TestStopDuringStart: a stop asked for while chatd starts (ctx, the
// signals' context, cancelled while MongoDB is reached, or before the
// start) ends the run with nil, exit status 0, and a log line saying
// so; it was "MONGODB_URI: no MongoDB answered ... context canceled" and
// exit status 1, so systemctl stop left the unit failed and pm2 counted a
// crash. A MongoDB that does not answer within CHATD_DB_CONNECT_TIMEOUT,
// with no stop asked for, still fails the start with its message (the
// timeout is the least, 1 s, for that case; a stop does not wait for it:
// persistence/mongo TestOpenAbandonedReturnsPromptly).
func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mongo bool // the silent MongoDB, else SQLite
		stop  func(cancel context.CancelFunc, dialled <-chan struct{})
		step  string // where the stop is said, "" for the MongoDB error
	}{
		{"while MongoDB is reached", true, func(cancel context.CancelFunc, dialled <-chan struct{}) {
			<-dialled
			cancel()
		}, "open the store"},
		{"before the start", true, func(cancel context.CancelFunc, _ <-chan struct{}) { cancel() }, "open the store"},
		{"no stop: MongoDB's timeout", true, func(context.CancelFunc, <-chan struct{}) {}, ""},
		{"before the start, SQLite", false, func(cancel context.CancelFunc, _ <-chan struct{}) { cancel() }, "open the store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, dialled := silentserver.Start(t)
			env := testEnv(t.TempDir(), "JWT_SECRET", strings.Repeat("k", 32))
			if tt.mongo {
				env["MONGODB_URI"] = "mongodb://" + addr + "/chatd?directConnection=true"
				// Short where the test waits it out; else long, so that a
				// stall under -race on a loaded machine between the dial
				// and the stop does not let it end the start first.
				env["CHATD_DB_CONNECT_TIMEOUT"] = "30s"
				if tt.step == "" {
					env["CHATD_DB_CONNECT_TIMEOUT"] = "1s"
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var logs syncbuf.Buffer
			done := make(chan error, 1)
			go func() {
				done <- runWith(ctx, envOf(env), &logs, hooks{ready: func(net.Addr) { t.Error("served") }})
			}()
			tt.stop(cancel, dialled)
			var err error
			select {
			case err = <-done:
			case <-time.After(testTimeout):
				t.Fatalf("run still going %s after the stop\n%s", testTimeout, &logs)
			}
			out := logs.String()
			if tt.step == "" {
				if err == nil || !strings.Contains(err.Error(), "no MongoDB answered") {
					t.Errorf("run: %v, want the MongoDB timeout's error\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Errorf("run: %v, want nil (exit status 0)", err)
			}
			if !strings.Contains(out, `"msg":"stopped during start-up","step":"`+tt.step+`"`) || strings.Contains(out, "no MongoDB") {
				t.Errorf("logs lack the stop during start-up at %q, or blame MongoDB:\n%s", tt.step, out)
			}
		})
	}
}
