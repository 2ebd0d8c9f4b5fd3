package natsbus

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"

	"chatd/internal/lograte"
)

// TestAsyncErrorsRateLimited: the errors nats.go reports apart from any
// call are logged once each, naming the subscription's subject, however
// many come in a burst. nats.go reports a follow's slow consumer again
// for each message it drops after one got through (hundreds a second
// from one follow a little behind) and a permission violation once per
// publish: each was a line, naming no subject.
func TestAsyncErrorsRateLimited(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	logs := make(logRecords, 4096)
	b, _ := newBusWith(t, c, Options{InstanceID: "async", Logger: slog.New(logs)})
	sub, err := b.nc.SubscribeSync("chatd.test.async")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	denied := errors.New(`nats: permissions violation for publish to "chatd.test.denied"`)
	report := b.nc.Opts.AsyncErrorCB // the handler New gave the connection
	const burst = 1000
	for range burst {
		report(b.nc, sub, nats.ErrSlowConsumer)
		report(b.nc, nil, denied)
	}
	lines := map[string][]slog.Record{}
	for len(logs) > 0 {
		if r := <-logs; r.Message == "NATS error" {
			lines[logAttr(r, lograte.ErrKey)] = append(lines[logAttr(r, lograte.ErrKey)], r)
		}
	}
	slow, violations := len(lines[nats.ErrSlowConsumer.Error()]), len(lines[denied.Error()])
	if slow != 1 || violations != 1 || len(lines) != 2 {
		t.Fatalf("a burst of %d of each logged %d slow consumer lines and %d permission violations (%d errors), want one each",
			burst, slow, violations, len(lines))
	}
	if s := logAttr(lines[nats.ErrSlowConsumer.Error()][0], "subject"); s != sub.Subject {
		t.Errorf("slow consumer logged with subject %q, want %q", s, sub.Subject)
	}
}
