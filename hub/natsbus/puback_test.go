package natsbus

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ack string
		seq       uint64
		err       string // a substring of the error; "" for none
	}{
		{"plain", `{"stream":"CHATD_ANSWERS","seq":17}`, 17, ""},
		{"domain", `{"stream":"CHATD_ANSWERS","domain":"hub","seq":9}`, 9, ""},
		{"duplicate", `{"stream":"CHATD_ANSWERS","seq":42,"duplicate": true}`, 42, ""},
		{"spaced, through encoding/json", `{ "stream": "S", "seq": 5 }`, 5, ""},
		{"other order", `{"seq":7,"stream":"S"}`, 7, ""},
		{"error", `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"","seq":0}`, 0, "maximum messages exceeded"},
		{"error after the head", `{"stream":"S","seq":3,"error":{"code":400,"description":"bad"}}`, 0, "bad"},
		{"escaped name", `{"stream":"A\",\"seq\":1","seq":8}`, 8, ""},
		{"no sequence", `{"stream":"S"}`, 0, "invalid JetStream acknowledgement"},
		{"zero sequence", `{"stream":"S","seq":0}`, 0, "invalid JetStream acknowledgement"},
		{"cut short", `{"stream":"S","seq":12`, 0, "invalid JetStream acknowledgement"},
		{"largest sequence", `{"stream":"S","seq":18446744073709551615}`, 18446744073709551615, ""},
		{"sequence too large", `{"stream":"S","seq":18446744073709551616}`, 0, "invalid JetStream acknowledgement"},
		{"not JSON", `+OK`, 0, "invalid JetStream acknowledgement"},
		{"empty", ``, 0, "invalid JetStream acknowledgement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seq, err := parsePubAck([]byte(tc.ack))
			if tc.err == "" {
				if err != nil || seq != tc.seq {
					t.Fatalf("parsePubAck(%s) = %d, %v; want %d", tc.ack, seq, err, tc.seq)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parsePubAck(%s) = %d, %v; want an error with %q", tc.ack, seq, err, tc.err)
			}
		})
	}
	// A server error keeps its code for errors.As.
	_, err := parsePubAck([]byte(`{"error":{"code":503,"err_code":10077,"description":"x"}}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 {
		t.Fatalf("error %v does not carry the API error 10077", err)
	}
}
