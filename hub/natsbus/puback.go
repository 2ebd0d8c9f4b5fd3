package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishAcked stores m (its header names its message id for JetStream's
// duplicate window) and returns the stream sequence JetStream acknowledged. It is what
// jetstream.PublishMsg does, without its retry on no responders (the hub
// retries a failed publish itself) and with the acknowledgement read by
// parsePubAck: the frames of every answer are published this way, and
// decoding each acknowledgement with encoding/json was a tenth of the
// publishing instance's CPU.
func (b *Bus) publishAcked(ctx context.Context, m *nats.Msg) (uint64, error) {
	resp, err := b.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, jetstream.ErrNoStreamResponse
		}
		return 0, err
	}
	return parsePubAck(resp.Data)
}

// errBadAck is a JetStream acknowledgement that could not be read.
var errBadAck = errors.New("natsbus: invalid JetStream acknowledgement")

// parsePubAck returns the stream sequence of a JetStream publish
// acknowledgement, or the error it carries. The acknowledgement the server
// writes, {"stream":"NAME","seq":N} with optional members after seq
// ("domain", "duplicate", "val", "batch", "count"), is read without
// decoding it; anything else (an error, another layout) goes through
// encoding/json.
func parsePubAck(data []byte) (uint64, error) {
	const head, seqKey = `{"stream":"`, `","seq":`
	if bytes.HasPrefix(data, []byte(head)) && !bytes.Contains(data, []byte(`"error"`)) {
		rest := data[len(head):]
		if i := bytes.Index(rest, []byte(seqKey)); i > 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			digits := rest[i+len(seqKey):]
			end := 0
			for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
				end++
			}
			if end > 0 && end < len(digits) && (digits[end] == ',' || digits[end] == '}') {
				if seq, err := strconv.ParseUint(string(digits[:end]), 10, 64); err == nil && seq > 0 {
					return seq, nil
				}
			}
		}
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error,omitempty"`
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, fmt.Errorf("%w: %w", errBadAck, err)
	}
	if ack.Error != nil {
		return 0, ack.Error // its text starts with "nats: "
	}
	if ack.Stream == "" || ack.Seq == 0 {
		return 0, fmt.Errorf("%w: %q", errBadAck, data)
	}
	return ack.Seq, nil
}
