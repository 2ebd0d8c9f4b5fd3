#!/usr/bin/env bash
# pm2-setup.sh sets up pm2 for chatd on a server, as the user that runs pm2
# (docs/deploy.md, "4b. Run with pm2"):
#
#   1. installs the pm2-logrotate module and configures it: rotate daily at
#      midnight and whenever a file passes 100 MB, gzip rotated files, keep 7;
#   2. starts chatd from deploy/ecosystem.config.js (or reloads it);
#   3. with --startup, saves the process list and registers pm2 to start at
#      boot (as a user other than root, pm2 prints the systemd command to
#      run as root, and the script goes on).
#
# Usage: deploy/pm2-setup.sh [--startup]
# Environment: CHATD_BIN, CHATD_ENV_FILE, CHATD_LOG_DIR, CHATD_WORKDIR as in
# ecosystem.config.js; PM2_HOME as pm2 itself (default ~/.pm2).
set -euo pipefail

# pm2 saves the whole environment of chatd (JWT_SECRET, MONGODB_URI, API
# keys from chatd.env) in $PM2_HOME/dump.pm2, and its daemon, started from
# here, inherits this umask: keep its files to the user (with the usual 022,
# PM2_HOME was 0755 and dump.pm2 0644, readable by every local user).
umask 077

here="$(cd "$(dirname "$0")" && pwd)"
pm2() { npx --prefix "$here" --no-install pm2 "$@"; }

if [ ! -x "$here/node_modules/.bin/pm2" ]; then
	echo "pm2-setup.sh: pm2 is not installed: run  npm ci --omit=dev --prefix $here" >&2
	exit 1
fi

mkdir -p "${CHATD_LOG_DIR:-/var/log/chatd}"

# Log rotation (the settings the seed used, plus a size cap). pm2-logrotate
# 3.0.0 ignores compress (keymetrics/pm2-logrotate#201); it is set for the
# fixed release. For compressed files now, use deploy/logrotate-chatd
# instead of this module (docs/deploy.md).
pm2 install pm2-logrotate
pm2 set pm2-logrotate:compress true
pm2 set pm2-logrotate:retain 7
pm2 set pm2-logrotate:rotateInterval '0 0 * * *'
pm2 set pm2-logrotate:max_size 100M
pm2 set pm2-logrotate:dateFormat 'YYYY-MM-DD_HH-mm-ss'

# Start, or reload with the current file and environment. --update-env
# merges: a variable removed from the env file keeps its old value until
# `pm2 delete chatd` and a fresh start (docs/deploy.md).
if pm2 describe chatd >/dev/null 2>&1; then
	pm2 reload "$here/ecosystem.config.js" --update-env
else
	pm2 start "$here/ecosystem.config.js"
fi

# Save first: as any user but root, `pm2 startup` only prints the command
# to run as root and exits 1, which must not stop the script before the
# list is saved (under set -e it did).
startup_failed=
if [ "${1:-}" = "--startup" ]; then
	pm2 save
	if ! pm2 startup systemd; then
		startup_failed=1
		echo "pm2-setup.sh: pm2 is not registered at boot yet: run the command pm2 printed above as root (the process list is saved)" >&2
	fi
fi
pm2 status
# A PM2_HOME made earlier (by another pm2 command, under umask 022) is
# closed too, with what it holds.
pm2_home="${PM2_HOME:-$HOME/.pm2}"
if [ -d "$pm2_home" ]; then
	chmod -R go-rwx "$pm2_home"
fi
# As root, pm2 startup installs the unit itself: a failure is real.
if [ -n "$startup_failed" ] && [ "$(id -u)" = 0 ]; then
	exit 1
fi
