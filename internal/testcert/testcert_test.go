package testcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"chatd/internal/testcert"
)

func TestIssue(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "test CA")
	other := testcert.NewCA(t, "another CA")
	cases := []struct {
		name   string
		usages []x509.ExtKeyUsage
		host   string
	}{
		{"server by name", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "localhost"},
		{"server by address", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "127.0.0.1"},
		{"client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, ""},
		{"both", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "localhost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			certPEM, keyPEM := ca.Issue(t, "leaf", c.usages...)
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("the certificate and its key do not load as a pair: %v", err)
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: c.host, KeyUsages: c.usages}
			if _, err := leaf.Verify(opts); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
			opts.Roots = other.Pool()
			if _, err := leaf.Verify(opts); err == nil {
				t.Error("verifies against another CA")
			}
		})
	}
}

func TestCAPEMAndKey(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "test CA")
	if !x509.NewCertPool().AppendCertsFromPEM(ca.PEM()) {
		t.Error("the CA's PEM holds no certificate")
	}
	certPEM, _ := ca.Issue(t, "leaf", x509.ExtKeyUsageClientAuth)
	if _, err := tls.X509KeyPair(certPEM, testcert.Key(t)); err == nil {
		t.Error("a key of no certificate pairs with the leaf")
	}
	if b, _ := pem.Decode(testcert.Key(t)); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("Key is not a PEM private key: %v", b)
	}
}
