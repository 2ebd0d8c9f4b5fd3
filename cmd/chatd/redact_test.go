package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestPasswordNeverShown: a password in MONGODB_URI, CHATD_NATS_URL or
// OPENAI_BASE_URL appears neither in a configuration error nor in the
// "opening store" log line or the error of a store that cannot be opened,
// however the value is mistyped.
func TestPasswordNeverShown(t *testing.T) {
	t.Parallel()
	const pw = "pa/ss?w0rd"
	configCases := []map[string]string{
		{"MONGODB_URI": "chatd:hunter2@db1"},
		{"MONGODB_URI": "postgres://chatd:" + pw + "@db1/chatd"},
		{"MONGODB_URI": "mongodb://db1/chatd", "CHATD_NATS_URL": "chatd:hunter2@nats1:4222"},
		{"MONGODB_URI": "mongodb://db1/chatd", "CHATD_NATS_URL": "nats//chatd:hunter2@nats1:4222"},
		{"MONGODB_URI": "mongodb://db1/chatd", "CHATD_NATS_URL": "nats://chatd:" + pw + "@nats1:4222"},
		{"OPENAI_BASE_URL": "htps://u:hunter2@api.example/v1"},
		{"OPENAI_BASE_URL": "htps://u:" + pw + "@api.example/v1"},
	}
	for _, env := range configCases {
		_, err := loadConfig(envOf(env))
		if err == nil {
			t.Errorf("%v: no error", env)
			continue
		}
		for _, secret := range []string{"hunter2", pw, "pa/ss", "w0rd"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%v: the error shows %q: %v", env, secret, err)
			}
		}
	}
	for _, uri := range []string{
		"mongodb://chatd:" + pw + "@127.0.0.1:1/chatd",
		"mongodb://chatd:pa/ss@127.0.0.1:1/chatd",
		"mongodb://chatd:pa?ss@127.0.0.1:1/chatd",
	} {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		cfg := Config{MongoURI: uri, MongoDatabase: "chatd", DBConnectTimeout: 200 * time.Millisecond}
		s, err := openStore(context.Background(), cfg, logger)
		if err == nil {
			s.Close(context.Background())
			t.Fatalf("%s: opened a store on a closed port", uri)
		}
		for _, secret := range []string{pw, "pa/ss", "pa?ss", "w0rd"} {
			if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("%s shows %q:\nlog: %s\nerror: %v", uri, secret, logs.String(), err)
			}
		}
	}
}

// TestQuerySecretsNeverShown: secrets a URI carries in its query (MongoDB's
// tlsCertificateKeyFilePassword, an AWS session token in
// authMechanismProperties, an upstream's api-key) appear neither in the
// "opening store" log line, the error of a store that cannot be opened,
// nor the banner.
func TestQuerySecretsNeverShown(t *testing.T) {
	t.Parallel()
	secrets := []string{"hunter2", "tok3n", "k3yz", "p%40ss", "p@ss"}
	cases := []struct{ in, redacted string }{
		{"mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=hunter2", "mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://u:pw@h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok3n",
			"mongodb://xxxxx@h/?authMechanism=MONGODB-AWS&authMechanismProperties=xxxxx"},
		{"https://proxy.example/v1?api-version=2024-02-01&api-key=k3yz", "https://proxy.example/v1?api-version=2024-02-01&api-key=xxxxx"},
		{"https://proxy.example/v1?Token=p%40ss", "https://proxy.example/v1?Token=xxxxx"},
	}
	for _, c := range cases {
		if got := redactURI(c.in); got != c.redacted {
			t.Errorf("redactURI(%q) = %q, want %q", c.in, got, c.redacted)
		}
		if got := scrubPassword("failed: "+c.in+" (p@ss, hunter2, tok3n, AWS_SESSION_TOKEN:tok3n, k3yz)", c.in); strings.Contains(got, "hunter2") && strings.Contains(c.in, "hunter2") ||
			strings.Contains(got, "tok3n") && strings.Contains(c.in, "tok3n") || strings.Contains(got, "k3yz") && strings.Contains(c.in, "k3yz") ||
			strings.Contains(got, "p@ss") && strings.Contains(c.in, "p%40ss") {
			t.Errorf("scrubPassword(.., %q) = %q", c.in, got)
		}
	}

	uri := "mongodb://127.0.0.1:1/chatd?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok3n&tlsCertificateKeyFilePassword=hunter2"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{MongoURI: uri, MongoDatabase: "chatd", DBConnectTimeout: 200 * time.Millisecond,
		OpenAIKey: "sk", OpenAIModels: []string{"m"}, OpenAIBaseURL: "https://proxy.example/v1?api-key=k3yz"}
	if s, err := openStore(context.Background(), cfg, logger); err == nil {
		s.Close(context.Background())
		t.Fatal("opened a store on a closed port")
	} else {
		logs.WriteString(err.Error())
	}
	var banner bytes.Buffer
	printBanner(&banner, true, cfg)
	for _, secret := range secrets {
		if strings.Contains(logs.String(), secret) || strings.Contains(banner.String(), secret) {
			t.Errorf("%q shown:\nlog and error: %s\nbanner: %s", secret, logs.String(), banner.String())
		}
	}
}
