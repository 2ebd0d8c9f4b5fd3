package natsbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/internal/testcert"
)

// TestClientCertificateRenewed: against NATS servers that verify their
// clients, an instance connects with its client certificate, and the
// files are read again at every connection: after they are replaced by a
// certificate the servers refuse, the next connection fails and says so in
// the log; once a renewed, valid certificate is installed over them the
// instance connects again by itself, without a new Bus.
func TestClientCertificateRenewed(t *testing.T) {
	ca := testcert.NewCA(t, "chatd test NATS CA")
	pair, err := tls.X509KeyPair(ca.Issue(t, "nats", x509.ExtKeyUsageServerAuth))
	if err != nil {
		t.Fatal(err)
	}
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw", TLS: &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12}})

	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	testcert.WriteFile(t, caFile, ca.PEM())
	install := func(certPEM, keyPEM []byte) {
		testcert.WriteFile(t, certFile, certPEM)
		testcert.WriteFile(t, keyFile, keyPEM)
	}
	install(ca.Issue(t, "chatd web-1", x509.ExtKeyUsageClientAuth))

	logs := make(logRecords, 1024)
	b, err := New(Options{URLs: c.URLs(), InstanceID: "tls-1", User: "chatd", Password: "pw",
		TLSCAFile: caFile, TLSCertFile: certFile, TLSKeyFile: keyFile,
		LeaseTTL: 3 * time.Second, OutageGrace: 200 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitHealthy(t, ctx, b)

	// A certificate another CA signed: the servers refuse it at the next
	// connection, which the restart of the node forces.
	install(testcert.NewCA(t, "some other CA").Issue(t, "chatd web-1", x509.ExtKeyUsageClientAuth))
	drain(logs)
	c.Kill(0)
	c.Restart(0)
	for refused := false; !refused; {
		select {
		case r := <-logs:
			if r.Message == "NATS connection attempt failed" {
				reason := logAttr(r, "err")
				// The certificate's refusal, not the moment the node was down.
				refused = strings.Contains(reason, "tls:")
			}
		case <-ctx.Done():
			t.Fatal("no refused connection attempt was logged with the refused certificate installed")
		}
	}
	for err := b.Health(ctx); !errors.Is(err, hub.ErrBusUnavailable); err = b.Health(ctx) {
		select {
		case <-ctx.Done():
			t.Fatalf("the bus stayed usable with a refused certificate: %v", err)
		case <-time.After(20 * time.Millisecond): // polling the bus's state
		}
	}

	// The renewed certificate: the instance is back without a restart.
	install(ca.Issue(t, "chatd web-1", x509.ExtKeyUsageClientAuth))
	waitHealthy(t, ctx, b)
}

// drain empties the log records received so far.
func drain(logs logRecords) {
	for {
		select {
		case <-logs:
		default:
			return
		}
	}
}
