package docs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAssetPruneKeepsTheInstalledBuild runs deploy.md's prune of old
// front-end assets on a copy of its layout: files of older builds made
// more than 30 days ago go, newer ones stay, and the installed build's
// stay however old (rsync -a keeps the build's times, so a month without
// a deploy made them as old: the prune deploy.md gave, find -mtime +30
// -delete, deleted them and left a blank page). Without a build at hand
// it deletes nothing.
func TestAssetPruneKeepsTheInstalledBuild(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	var prune string
	for _, b := range readBlocks(t, "deploy.md") {
		if text := strings.Join(b.lines, "\n"); strings.Contains(text, "/srv/chatd/frontend/assets") && strings.Contains(text, "-mtime +30") {
			prune = text
		}
	}
	if prune == "" {
		t.Fatal("deploy.md: no block prunes /srv/chatd/frontend/assets (-mtime +30)")
	}
	old, recent := time.Now().Add(-40*24*time.Hour), time.Now().Add(-10*24*time.Hour)
	for _, tc := range []struct {
		name        string
		built       []string // frontend/dist/assets of the checkout
		kept, gone  []string
		installedAt time.Time
	}{
		{"a build installed 40 days ago", []string{"index-new1.js", "KaTeX_Main-abc.woff2"},
			[]string{"index-new1.js", "KaTeX_Main-abc.woff2", "index-mid2.js"}, []string{"index-old3.js", "chunk-old4.css"}, old},
		{"no build at hand", nil,
			[]string{"index-new1.js", "index-mid2.js", "index-old3.js", "chunk-old4.css"}, nil, old},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dist, served := filepath.Join(dir, "frontend", "dist", "assets"), filepath.Join(dir, "srv", "assets")
			for _, d := range []string{dist, served} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(path string, at time.Time) {
				if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, at, at); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.built {
				write(filepath.Join(dist, f), tc.installedAt)
			}
			write(filepath.Join(served, "index-new1.js"), tc.installedAt)
			write(filepath.Join(served, "KaTeX_Main-abc.woff2"), tc.installedAt)
			write(filepath.Join(served, "index-mid2.js"), recent)
			write(filepath.Join(served, "index-old3.js"), old)
			write(filepath.Join(served, "chunk-old4.css"), old)

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bash, "-c", strings.ReplaceAll(prune, "/srv/chatd/frontend", filepath.Join(dir, "srv")))
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil && len(tc.built) > 0 {
				t.Fatalf("the prune failed: %v\n%s", err, out)
			}
			for _, f := range tc.kept {
				if _, err := os.Stat(filepath.Join(served, f)); err != nil {
					t.Errorf("%s was deleted: %v", f, err)
				}
			}
			for _, f := range tc.gone {
				if _, err := os.Stat(filepath.Join(served, f)); err == nil {
					t.Errorf("%s, of an older build made 40 days ago, was kept", f)
				}
			}
		})
	}
}
