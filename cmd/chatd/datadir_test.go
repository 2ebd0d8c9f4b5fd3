package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareDataDir: CHATD_DATA_DIR is made when this run keeps files
// there, left alone when it keeps none (MongoDB and JWT_SECRET), and a
// directory that cannot be made or written is refused with an error that
// names the variable and the fix.
func TestPrepareDataDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(base, "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Permissions do not stop root: sysfs refuses new files to
		// anyone (Linux), which the tests run on as root in CI.
		readOnly = "/sys/kernel"
		if _, err := os.Stat(readOnly); err != nil {
			t.Skipf("running as root without %s, no directory root cannot write in: %v", readOnly, err)
		}
	}
	secret := strings.Repeat("s", 32)
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // "" for none
		made    bool   // whether the directory must exist afterwards
	}{
		{name: "SQLite: made, with its parents", cfg: Config{DataDir: filepath.Join(base, "new", "data")}, made: true},
		{name: "MongoDB, development secret: made", cfg: Config{DataDir: filepath.Join(base, "dev"), MongoURI: "mongodb://db"}, made: true},
		{name: "MongoDB and JWT_SECRET: nothing to keep, nothing made",
			cfg: Config{DataDir: filepath.Join(base, "unused"), MongoURI: "mongodb://db", JWTSecret: secret}},
		{name: "a file in its place", cfg: Config{DataDir: file}, wantErr: "CHATD_DATA_DIR: cannot make " + file},
		{name: "under a file", cfg: Config{DataDir: filepath.Join(file, "data")}, wantErr: "CHATD_DATA_DIR: cannot make "},
		{name: "not writable", cfg: Config{DataDir: readOnly}, wantErr: "CHATD_DATA_DIR: cannot write in " + readOnly, made: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := prepareDataDir(c.cfg)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) ||
				!strings.Contains(err.Error(), "set CHATD_DATA_DIR to a directory")):
				t.Fatalf("error %v, want one saying %q and the fix", err, c.wantErr)
			}
			fi, serr := os.Stat(c.cfg.DataDir)
			if made := serr == nil && fi.IsDir(); made != c.made {
				t.Fatalf("directory made: %v, want %v", made, c.made)
			}
			if c.made && c.wantErr == "" && fi.Mode().Perm() != 0o700 {
				t.Errorf("mode %v, want 0700", fi.Mode().Perm())
			}
			if entries, _ := os.ReadDir(c.cfg.DataDir); c.made && c.wantErr == "" && len(entries) != 0 {
				t.Errorf("the write test left %v behind", entries)
			}
		})
	}
}
