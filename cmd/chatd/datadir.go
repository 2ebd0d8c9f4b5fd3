package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// prepareDataDir makes CHATD_DATA_DIR (mode 0700) when this run keeps
// something there: the SQLite store, or the development JWT secret. With
// MongoDB and JWT_SECRET nothing is kept, and no ./data is made in the
// working directory. A directory this user cannot make or write is refused
// now, naming the variable and what to do, rather than by whichever file
// the store opens first.
func prepareDataDir(cfg Config) error {
	if cfg.MongoURI != "" && cfg.JWTSecret != "" {
		return nil
	}
	dir := cfg.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	const fix = "set CHATD_DATA_DIR to a directory the user chatd runs as (uid %d) can write, or give it this one"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("CHATD_DATA_DIR: cannot make %s: %w; "+fix, dir, err, os.Geteuid())
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("CHATD_DATA_DIR: cannot write in %s: %w; "+fix, dir, err, os.Geteuid())
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return fmt.Errorf("CHATD_DATA_DIR: remove %s: %w", probe.Name(), err)
	}
	return nil
}
