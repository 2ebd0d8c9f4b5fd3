package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPM2SetupStartupSavesAsUser runs deploy/pm2-setup.sh --startup against
// a stand-in pm2 that behaves like pm2 for a user other than root: `pm2
// startup` prints the sudo command and exits 1. The script must still save
// the process list, print what to do, and succeed.
func TestPM2SetupStartupSavesAsUser(t *testing.T) {
	need(t, "npx", "apt-get install -y nodejs npm")
	root := repoRoot(t)
	tmp := t.TempDir()
	kit := filepath.Join(tmp, "deploy")
	bin := filepath.Join(kit, "node_modules", ".bin")
	fakePath := filepath.Join(tmp, "path")
	for _, d := range []string{bin, fakePath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "deploy", "pm2-setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(tmp, "calls")
	files := map[string]string{
		filepath.Join(kit, "pm2-setup.sh"): string(script),
		filepath.Join(bin, "pm2"): `#!/bin/sh
echo "$*" >>"$PM2_CALLS"
case "$1" in
describe) exit 1 ;;
startup) echo "[PM2] To setup the Startup Script, copy/paste the following command:"
	echo "sudo env PATH=\$PATH pm2 startup systemd -u user --hp /home/user"
	exit 1 ;;
esac
`,
		filepath.Join(fakePath, "id"): "#!/bin/sh\necho 1000\n",
	}
	writeExecutables(t, files)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := run(ctx, []string{"PM2_CALLS=" + calls, "CHATD_LOG_DIR=" + filepath.Join(tmp, "log"),
		"PATH=" + fakePath + ":" + os.Getenv("PATH")}, tmp, "bash", filepath.Join(kit, "pm2-setup.sh"), "--startup")
	if err != nil {
		t.Fatalf("pm2-setup.sh --startup: %v\n%s", err, out)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(got), "\nsave\n") {
		t.Errorf("pm2 save was not run; pm2 calls:\n%s", got)
	}
	for _, want := range []string{"sudo env PATH", "run the command pm2 printed above as root"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// TestPM2SetupKeepsPM2HomePrivate runs deploy/pm2-setup.sh --startup under
// umask 022 (Debian's) against a stand-in pm2 that makes PM2_HOME and
// writes dump.pm2 as pm2 does, with the umask it inherits. dump.pm2 holds
// chatd's whole environment (JWT_SECRET among it): neither it nor PM2_HOME
// may keep a group or other permission bit, whether PM2_HOME is new or was
// left open by an earlier pm2.
func TestPM2SetupKeepsPM2HomePrivate(t *testing.T) {
	need(t, "npx", "apt-get install -y nodejs npm")
	root := repoRoot(t)
	script, err := os.ReadFile(filepath.Join(root, "deploy", "pm2-setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		earlier bool // PM2_HOME 0755 and dump.pm2 0644 exist before the script
	}{
		{"new PM2_HOME", false},
		{"PM2_HOME left open", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			kit := filepath.Join(tmp, "deploy")
			bin := filepath.Join(kit, "node_modules", ".bin")
			fakePath := filepath.Join(tmp, "path")
			home := filepath.Join(tmp, "pm2home")
			for _, d := range []string{bin, fakePath} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.earlier {
				if err := os.Mkdir(home, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(home, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(home, "dump.pm2"), []byte("[]"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(home, "dump.pm2"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files := map[string]string{
				filepath.Join(kit, "pm2-setup.sh"): string(script),
				filepath.Join(bin, "pm2"): `#!/bin/sh
mkdir -p "$PM2_HOME"
case "$1" in
describe) exit 1 ;;
save) echo '[{"env":{"JWT_SECRET":"s3cret"}}]' >"$PM2_HOME/dump.pm2" ;;
startup) exit 1 ;;
esac
`,
				filepath.Join(fakePath, "id"): "#!/bin/sh\necho 1000\n",
			}
			writeExecutables(t, files)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := run(ctx, []string{"PM2_HOME=" + home, "CHATD_LOG_DIR=" + filepath.Join(tmp, "log"),
				"PATH=" + fakePath + ":" + os.Getenv("PATH")}, tmp,
				"bash", "-c", `umask 022 && exec bash "$0" --startup`, filepath.Join(kit, "pm2-setup.sh"))
			if err != nil {
				t.Fatalf("pm2-setup.sh --startup: %v\n%s", err, out)
			}
			for _, p := range []string{home, filepath.Join(home, "dump.pm2")} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if m := fi.Mode().Perm(); m&0o077 != 0 {
					t.Errorf("%s has mode %#o: group or others can read chatd's secrets", filepath.Base(p), m)
				}
			}
		})
	}
}

// writeExecutables writes each file of files (path: text) executable:
// the stand-in commands a script under test finds first on its PATH.
func writeExecutables(t *testing.T, files map[string]string) {
	t.Helper()
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
