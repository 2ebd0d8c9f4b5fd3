package auth

import (
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
