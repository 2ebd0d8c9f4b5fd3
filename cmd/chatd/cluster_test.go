package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"chatd/hub/natsbus"
	"chatd/hub/natsbus/natstest"
	"chatd/internal/testcert"
	"chatd/transport/auth"
)

const testMongo = "mongodb://chatd:pw@db1:27017/chatd"

// clusterFiles writes a credentials file and a CA certificate for the
// tests and returns their paths.
func clusterFiles(t *testing.T) (creds, ca string) {
	t.Helper()
	dir := t.TempDir()
	creds, ca = filepath.Join(dir, "chatd.creds"), filepath.Join(dir, "ca.pem")
	testcert.WriteFile(t, creds, []byte("-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n"))
	testcert.WriteFile(t, ca, testcert.NewCA(t, "nats test CA").PEM())
	return creds, ca
}

// clientCertFiles writes a client certificate, its key and a key of
// another pair, and returns their paths.
func clientCertFiles(t *testing.T) (cert, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	cert, key, otherKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), filepath.Join(dir, "other-key.pem")
	certPEM, keyPEM := testcert.NewCA(t, "nats test CA").Issue(t, "chatd web-1", x509.ExtKeyUsageClientAuth)
	testcert.WriteFile(t, cert, certPEM)
	testcert.WriteFile(t, key, keyPEM)
	testcert.WriteFile(t, otherKey, testcert.Key(t))
	return cert, key, otherKey
}

func TestClusterConfigValues(t *testing.T) {
	t.Parallel()
	creds, ca := clusterFiles(t)
	cert, key, _ := clientCertFiles(t)
	seed, _ := natstest.UserNKey(t)
	cases := []struct {
		name string
		env  map[string]string
		want ClusterConfig
	}{
		{"unset is one process", nil, ClusterConfig{LeaseTTL: 10 * time.Second, StreamMaxBytes: 1 << 30}},
		{"three servers and a password", map[string]string{
			"MONGODB_URI": testMongo, "CHATD_NATS_URL": " nats://n1:4222, tls://n2:4222/ ,,nats://10.0.0.3",
			"CHATD_NATS_USER": "chatd", "CHATD_NATS_PASSWORD": " pass word ", "CHATD_INSTANCE_ID": "web-1_a",
			"CHATD_LEASE_TTL": "3s", "CHATD_NATS_TLS_CA": ca, "CHATD_NATS_STREAM_MAX_BYTES": "4GiB",
		}, ClusterConfig{URLs: []string{"nats://n1:4222", "tls://n2:4222", "nats://10.0.0.3"}, User: "chatd",
			Password: " pass word ", TLSCA: ca, InstanceID: "web-1_a", LeaseTTL: 3 * time.Second, StreamMaxBytes: 4 << 30}},
		{"credentials file", map[string]string{
			"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222", "CHATD_NATS_CREDS": creds, "CHATD_INSTANCE_ID": "a",
		}, ClusterConfig{URLs: []string{"nats://n1:4222"}, CredsFile: creds, InstanceID: "a", LeaseTTL: 10 * time.Second, StreamMaxBytes: 1 << 30}},
		{"mutual TLS", map[string]string{
			"MONGODB_URI": testMongo, "CHATD_NATS_URL": "tls://n1:4222", "CHATD_NATS_USER": "chatd", "CHATD_NATS_PASSWORD": "pw",
			"CHATD_NATS_TLS_CA": ca, "CHATD_NATS_TLS_CERT": cert, "CHATD_NATS_TLS_KEY": key, "CHATD_INSTANCE_ID": "m",
		}, ClusterConfig{URLs: []string{"tls://n1:4222"}, User: "chatd", Password: "pw", TLSCA: ca, TLSCert: cert, TLSKey: key,
			InstanceID: "m", LeaseTTL: 10 * time.Second, StreamMaxBytes: 1 << 30}},
		{"nkey seed", map[string]string{
			"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222", "CHATD_NATS_NKEY": seed, "CHATD_INSTANCE_ID": "k",
		}, ClusterConfig{URLs: []string{"nats://n1:4222"}, NKeyFile: seed, InstanceID: "k", LeaseTTL: 10 * time.Second, StreamMaxBytes: 1 << 30}},
		{"token", map[string]string{
			"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1", "CHATD_NATS_TOKEN": " s3cret ", "CHATD_INSTANCE_ID": "b",
			"CHATD_LEASE_TTL": "5m",
		}, ClusterConfig{URLs: []string{"nats://n1"}, Token: "s3cret", InstanceID: "b", LeaseTTL: 5 * time.Minute, StreamMaxBytes: 1 << 30}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(envOf(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if name := c.want.InstanceID; name != "" {
				// The name and 8 hex digits, new on every start.
				id := cfg.Cluster.InstanceID
				if !strings.HasPrefix(id, name+"-") || len(id) != len(name)+9 || !instanceIDRE.MatchString(id) {
					t.Fatalf("instance id %q, want %s-<8 hex digits>", id, name)
				}
				cfg.Cluster.InstanceID = name
			}
			if !reflect.DeepEqual(cfg.Cluster, c.want) {
				t.Fatalf("cluster:\n got %+v\nwant %+v", cfg.Cluster, c.want)
			}
			if cfg.Cluster.Enabled() != (len(c.want.URLs) > 0) {
				t.Fatalf("Enabled() = %v", cfg.Cluster.Enabled())
			}
		})
	}
}

func TestClusterDefaultInstanceID(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(envOf(map[string]string{"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222"}))
	if err != nil {
		t.Fatal(err)
	}
	if !instanceIDRE.MatchString(cfg.Cluster.InstanceID) {
		t.Fatalf("default instance id %q is not a valid id", cfg.Cluster.InstanceID)
	}
	cases := []struct {
		host string
		err  error
		want string
	}{
		{"web-1.example.internal", nil, "web-1-example-internal"},
		{"", nil, "chatd"},
		{"ignored", errors.New("no host name"), "chatd"},
		{strings.Repeat("h", 70), nil, strings.Repeat("h", 40)},
	}
	for _, c := range cases {
		if got := hostName(func() (string, error) { return c.host, c.err }); got != c.want {
			t.Errorf("host %q: name %q, want %q", c.host, got, c.want)
		}
	}
}

// TestInstanceIDNewOnEveryStart: the same name (the host's, or one set
// in CHATD_INSTANCE_ID) gives a new id on every start, so a restarted
// process is never taken for the one before it.
func TestInstanceIDNewOnEveryStart(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"web-1", strings.Repeat("n", 55)} {
		env := envOf(map[string]string{"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222", "CHATD_INSTANCE_ID": name})
		first, err := loadConfig(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := loadConfig(env)
		if err != nil {
			t.Fatal(err)
		}
		a, b := first.Cluster.InstanceID, again.Cluster.InstanceID
		for _, id := range []string{a, b} {
			if !strings.HasPrefix(id, name+"-") || len(id) != len(name)+9 || !instanceIDRE.MatchString(id) {
				t.Errorf("instance id %q, want %s-<8 hex digits>", id, name)
			}
		}
		if a == b {
			t.Errorf("name %q: two starts got the same id %q", name, a)
		}
	}
}

func TestClusterConfigErrors(t *testing.T) {
	t.Parallel()
	creds, ca := clusterFiles(t)
	cert, key, otherKey := clientCertFiles(t)
	seed, _ := natstest.UserNKey(t)
	base := func(kv ...string) map[string]string {
		m := map[string]string{"MONGODB_URI": testMongo, "CHATD_NATS_URL": "nats://n1:4222"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		env  map[string]string
		want string // the variable the error must name
	}{
		{"nats with the sqlite store", map[string]string{"CHATD_NATS_URL": "nats://n1:4222"}, "CHATD_NATS_URL"},
		{"not a url", base("CHATD_NATS_URL", "n1:4222"), "CHATD_NATS_URL"},
		{"wrong scheme", base("CHATD_NATS_URL", "http://n1:4222"), "CHATD_NATS_URL"},
		{"path", base("CHATD_NATS_URL", "nats://n1:4222/x"), "CHATD_NATS_URL"},
		{"one bad of two", base("CHATD_NATS_URL", "nats://n1:4222,nats//n2"), "CHATD_NATS_URL"},
		{"password in the url", base("CHATD_NATS_URL", "nats://chatd:hunter2@n1:4222"), "CHATD_NATS_URL"},
		{"token in the url", base("CHATD_NATS_URL", "nats://hunter2@n1:4222"), "CHATD_NATS_URL"},
		{"user without password", base("CHATD_NATS_USER", "chatd"), "CHATD_NATS_USER"},
		{"password without user", base("CHATD_NATS_PASSWORD", "hunter2"), "CHATD_NATS_USER"},
		{"token and password", base("CHATD_NATS_TOKEN", "hunter2", "CHATD_NATS_USER", "u", "CHATD_NATS_PASSWORD", "hunter2"), "CHATD_NATS_CREDS"},
		{"creds and token", base("CHATD_NATS_CREDS", creds, "CHATD_NATS_TOKEN", "hunter2"), "CHATD_NATS_CREDS"},
		{"nkey and password", base("CHATD_NATS_NKEY", seed, "CHATD_NATS_USER", "u", "CHATD_NATS_PASSWORD", "hunter2"), "CHATD_NATS_CREDS"},
		{"nkey file is not a seed", base("CHATD_NATS_NKEY", creds), "CHATD_NATS_NKEY"},
		{"missing nkey file", base("CHATD_NATS_NKEY", "/nonexistent/chatd.nk"), "CHATD_NATS_NKEY"},
		{"missing creds file", base("CHATD_NATS_CREDS", "/nonexistent/chatd.creds"), "CHATD_NATS_CREDS"},
		{"creds is a directory", base("CHATD_NATS_CREDS", t.TempDir()), "CHATD_NATS_CREDS"},
		{"missing ca", base("CHATD_NATS_TLS_CA", "/nonexistent/ca.pem"), "CHATD_NATS_TLS_CA"},
		{"ca is not pem", base("CHATD_NATS_TLS_CA", creds), "CHATD_NATS_TLS_CA"},
		{"client certificate without its key", base("CHATD_NATS_TLS_CERT", cert), "CHATD_NATS_TLS_KEY"},
		{"client key without its certificate", base("CHATD_NATS_TLS_KEY", key), "CHATD_NATS_TLS_CERT"},
		{"client key of another certificate", base("CHATD_NATS_TLS_CERT", cert, "CHATD_NATS_TLS_KEY", otherKey), "CHATD_NATS_TLS_CERT"},
		{"client certificate is not pem", base("CHATD_NATS_TLS_CERT", creds, "CHATD_NATS_TLS_KEY", key), "CHATD_NATS_TLS_CERT"},
		{"client certificate is a CA without a key", base("CHATD_NATS_TLS_CERT", ca, "CHATD_NATS_TLS_KEY", key), "CHATD_NATS_TLS_CERT"},
		{"missing client certificate", base("CHATD_NATS_TLS_CERT", "/nonexistent/client.pem", "CHATD_NATS_TLS_KEY", key), "CHATD_NATS_TLS_CERT"},
		{"instance id with a dot", base("CHATD_INSTANCE_ID", "web.1"), "CHATD_INSTANCE_ID"},
		{"instance id wildcard", base("CHATD_INSTANCE_ID", ">"), "CHATD_INSTANCE_ID"},
		{"instance id too long", base("CHATD_INSTANCE_ID", strings.Repeat("a", 56)), "CHATD_INSTANCE_ID"},
		{"lease too short", base("CHATD_LEASE_TTL", "500ms"), "CHATD_LEASE_TTL"},
		{"lease too long", base("CHATD_LEASE_TTL", "6m"), "CHATD_LEASE_TTL"},
		{"lease not a duration", base("CHATD_LEASE_TTL", "10"), "CHATD_LEASE_TTL"},
		{"stream too small", base("CHATD_NATS_STREAM_MAX_BYTES", "1MiB"), "CHATD_NATS_STREAM_MAX_BYTES"},
		{"stream size not a size", base("CHATD_NATS_STREAM_MAX_BYTES", "lots"), "CHATD_NATS_STREAM_MAX_BYTES"},
		{"password without nats", map[string]string{"CHATD_NATS_PASSWORD": "hunter2"}, "CHATD_NATS_PASSWORD"},
		{"token without nats", map[string]string{"CHATD_NATS_TOKEN": "hunter2"}, "CHATD_NATS_TOKEN"},
		{"creds without nats", map[string]string{"CHATD_NATS_CREDS": creds}, "CHATD_NATS_CREDS"},
		{"nkey without nats", map[string]string{"CHATD_NATS_NKEY": seed}, "CHATD_NATS_NKEY"},
		{"client certificate without nats", map[string]string{"CHATD_NATS_TLS_CERT": cert, "CHATD_NATS_TLS_KEY": key}, "CHATD_NATS_TLS_CERT"},
		{"instance id without nats", map[string]string{"CHATD_INSTANCE_ID": "web-1"}, "CHATD_INSTANCE_ID"},
		{"lease without nats", map[string]string{"CHATD_LEASE_TTL": "30s"}, "CHATD_LEASE_TTL"},
		{"stream size without nats", map[string]string{"CHATD_NATS_STREAM_MAX_BYTES": "4GiB"}, "CHATD_NATS_STREAM_MAX_BYTES"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want+":") {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}

	// NATS over SQLite is reported together with the other bad values.
	_, err := loadConfig(envOf(map[string]string{"CHATD_NATS_URL": "nats://n1", "JWT_TTL": "x", "CHATD_LEASE_TTL": "0s"}))
	for _, name := range []string{"CHATD_NATS_URL: needs MONGODB_URI", "JWT_TTL:", "CHATD_LEASE_TTL:"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("want %q among the problems, got %v", name, err)
		}
	}

	// A URL set but refused is named alone: the settings beside it are not
	// said to lack it ("or remove CHATD_INSTANCE_ID" would point the wrong
	// way).
	_, err = loadConfig(envOf(base("CHATD_NATS_URL", "nats://chatd:hunter2@n1:4222", "CHATD_INSTANCE_ID", "web-1",
		"CHATD_NATS_STREAM_MAX_BYTES", "1GiB", "CHATD_NATS_USER", "chatd", "CHATD_NATS_PASSWORD", "pw")))
	if err == nil || !strings.Contains(err.Error(), "CHATD_NATS_URL:") || strings.Contains(err.Error(), "is set but CHATD_NATS_URL is not") {
		t.Errorf("a refused URL with settings beside it: %v, want only the URL's error", err)
	}
}

// TestBusOptions: every cluster setting reaches the bus, and the answer
// stream is sized for the longest answer.
func TestBusOptions(t *testing.T) {
	t.Parallel()
	c := ClusterConfig{URLs: []string{"tls://n1:4222", "tls://n2:4222"}, User: "chatd", Password: "pw", Token: "tok",
		CredsFile: "/etc/chatd/nats.creds", NKeyFile: "/etc/chatd/chatd.nk", TLSCA: "/etc/chatd/ca.pem", TLSCert: "/etc/chatd/client.pem",
		TLSKey: "/etc/chatd/client-key.pem", InstanceID: "web-1-0a1b2c3d", LeaseTTL: 7 * time.Second, StreamMaxBytes: 8 << 30}
	o := busOptions(Config{Cluster: c, MaxAnswerDuration: 10 * time.Minute, CoalesceInterval: 25 * time.Millisecond}, nil)
	got := []any{o.URLs, o.User, o.Password, o.Token, o.CredsFile, o.NKeySeedFile, o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile, o.InstanceID, o.LeaseTTL, o.Stream.MaxBytes}
	want := []any{c.URLs, c.User, c.Password, c.Token, c.CredsFile, c.NKeyFile, c.TLSCA, c.TLSCert, c.TLSKey, c.InstanceID, c.LeaseTTL, c.StreamMaxBytes}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bus options %v, want %v", got, want)
	}

	cases := []struct {
		name              string
		longest, coalesce time.Duration
		wantAge           time.Duration
		wantFrames        int64
	}{
		// The defaults: what natsbus kept before (15 minutes), and two
		// frames per 5 ms for 10 minutes.
		{"defaults", 10 * time.Minute, 25 * time.Millisecond, 15 * time.Minute, 240_016},
		// A slow reasoning model allowed an hour: its first frames stay
		// until it ends and 5 minutes more.
		{"an hour", time.Hour, 25 * time.Millisecond, 65 * time.Minute, 1_440_016},
		{"coarser coalescing", 10 * time.Minute, 100 * time.Millisecond, 15 * time.Minute, 60_016},
		{"a one-minute limit", time.Minute, 25 * time.Millisecond, 6 * time.Minute, 24_016},
	}
	for _, tc := range cases {
		l := streamLimits(Config{Cluster: c, MaxAnswerDuration: tc.longest, CoalesceInterval: tc.coalesce})
		if l.MaxAge != tc.wantAge || l.MaxMsgsPerAnswer != tc.wantFrames || l.MaxAge <= tc.longest {
			t.Errorf("%s: frames kept %s, %d per answer; want %s, %d", tc.name, l.MaxAge, l.MaxMsgsPerAnswer, tc.wantAge, tc.wantFrames)
		}
	}
}

// TestBusSecrets: the bus gets the fingerprints of the JWT secrets and a
// key for the names of the login limits' windows derived from the
// signing secret: not the secret, the same for every instance signing
// with it whatever else it accepts (a rotation's first and third steps),
// another for another signing secret.
func TestBusSecrets(t *testing.T) {
	t.Parallel()
	old, next := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	options := func(s jwtSecrets) natsbus.Options {
		t.Helper()
		var o natsbus.Options
		if err := busSecrets(&o, s); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := options(jwtSecrets{sign: old})
	if len(o.WindowsSecret) < 32 || bytes.Contains(o.WindowsSecret, old[:8]) {
		t.Fatalf("windows secret %x: want a key of 32 bytes, not the JWT secret", o.WindowsSecret)
	}
	if o.SessionKeys.Signs != auth.SecretFingerprint(old) {
		t.Fatalf("session keys %+v: want the fingerprint of the signing secret", o.SessionKeys)
	}
	if !bytes.Equal(o.WindowsSecret, options(jwtSecrets{sign: old, accepted: [][]byte{next}}).WindowsSecret) {
		t.Fatal("an accepted secret changes the windows secret: instances in a rotation's first step would count apart")
	}
	if bytes.Equal(o.WindowsSecret, options(jwtSecrets{sign: next}).WindowsSecret) {
		t.Fatal("two signing secrets give the same windows secret")
	}
}
