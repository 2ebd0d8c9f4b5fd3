package auth

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jwt-secret")
	s1, created, err := LoadOrCreateSecret(path)
	if err != nil || !created || len(s1) != 64 {
		t.Fatalf("first call: %q, created %v, %v", s1, created, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
	s2, created, err := LoadOrCreateSecret(path)
	if err != nil || created || string(s2) != string(s1) {
		t.Fatalf("second call: %q, created %v, %v; want the same secret", s2, created, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecret(path); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("a world-readable secret was left %v", info.Mode())
	}

	short := filepath.Join(t.TempDir(), "jwt-secret")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecret(short); err == nil || !strings.Contains(err.Error(), "fewer than 32") {
		t.Fatalf("short secret file: %v", err)
	}
}

// TestSecretFingerprint: a fingerprint is stable for a secret, differs
// between secrets, and does not contain the secret.
func TestSecretFingerprint(t *testing.T) {
	t.Parallel()
	a, b := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	fa := SecretFingerprint(a)
	if len(fa) != 16 || fa != SecretFingerprint(append([]byte(nil), a...)) {
		t.Fatalf("fingerprint %q: want 16 hex digits, the same for the same secret", fa)
	}
	if fa == SecretFingerprint(b) {
		t.Fatal("two secrets share a fingerprint")
	}
	if strings.Contains(fa, "aaaa") || strings.Contains(fa, hex.EncodeToString(a[:4])) {
		t.Fatalf("fingerprint %q shows the secret", fa)
	}
}

// TestDeriveKey: a derived key is stable for a secret and purpose,
// differs between secrets and between purposes, and is neither the
// secret nor its fingerprint's HMAC.
func TestDeriveKey(t *testing.T) {
	t.Parallel()
	a, b := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	derive := func(secret []byte, purpose string) string {
		t.Helper()
		k, err := DeriveKey(secret, purpose)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 32 {
			t.Fatalf("key of %d bytes, want 32", len(k))
		}
		return hex.EncodeToString(k)
	}
	ka := derive(a, "one")
	if ka != derive(append([]byte(nil), a...), "one") {
		t.Fatal("the same secret and purpose give two keys")
	}
	if ka == derive(b, "one") || ka == derive(a, "two") {
		t.Fatal("another secret or purpose gives the same key")
	}
	if ka == hex.EncodeToString(a) || strings.Contains(ka, SecretFingerprint(a)) {
		t.Fatalf("key %q is the secret or its fingerprint", ka)
	}
}
