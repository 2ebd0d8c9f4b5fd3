package natstest_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"chatd/hub/natsbus/natstest"
)

// TestAuthRefusals: a connection attempt with a wrong password is counted
// by the time it is refused, one with the password of the moment is not,
// and SetPassword changes which that is.
func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "secret"})
	url := strings.Join(c.URLs(), ",")
	try := func(password string, let bool, wantRefusals int) {
		t.Helper()
		nc, err := nats.Connect(url, nats.UserInfo("chatd", password), nats.NoReconnect())
		if err == nil {
			nc.Close()
		}
		if (err == nil) != let {
			t.Fatalf("password %q: connect: %v, want let in %v", password, err, let)
		}
		if n := c.AuthRefusals(); n != wantRefusals {
			t.Fatalf("password %q: AuthRefusals() = %d, want %d", password, n, wantRefusals)
		}
	}
	try("secret", true, 0)
	try("wrong", false, 1)
	try("another", false, 2)
	c.SetPassword("another")
	try("another", true, 2)
	try("secret", false, 3)
}
