package natsbus

import (
	"context"
	"strings"
	"testing"
)

// TestOptionsRefused: options that cannot work are refused by New before
// any connection.
func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no URL", Options{}, "no NATS URL"},
		{"client certificate without its key", Options{URLs: []string{"tls://n1:4222"}, TLSCertFile: "client.pem"}, "needs its key"},
		{"client key without its certificate", Options{URLs: []string{"tls://n1:4222"}, TLSKeyFile: "client-key.pem"}, "needs its key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if b, err := New(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
				if b != nil {
					_ = b.Close(context.Background())
				}
				t.Fatalf("New: %v, want an error saying %q", err, c.want)
			}
		})
	}
}
