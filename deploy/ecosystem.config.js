// pm2 process file for chatd (the seed's process manager).
//
//   npm ci --omit=dev --prefix /opt/chatd/deploy  # pm2, pinned by package-lock.json
//   npx --prefix /opt/chatd/deploy pm2 start /opt/chatd/deploy/ecosystem.config.js
//   deploy/pm2-setup.sh                         # log rotation + start at boot
//
// chatd is a Go binary: pm2 runs it directly (interpreter "none", no Node in
// the request path) and only supervises it: restart on exit with an
// exponential back-off, restart above a memory ceiling, stdout and stderr
// in separate files with a timestamp on each line.
//
// Settings come from the same environment file systemd uses
// (deploy/chatd.env.example), so both supervisors run the same server. The
// paths below can be changed without editing this file:
//
//   CHATD_BIN       the server binary          default /usr/local/bin/chatd
//   CHATD_ENV_FILE  KEY=VALUE settings         default /etc/chatd/chatd.env
//   CHATD_LOG_DIR   pm2's log files            default /var/log/chatd
//   CHATD_WORKDIR   working directory          default /var/lib/chatd
//
// Stopping: pm2 sends SIGINT (PM2_KILL_SIGNAL=SIGTERM in the daemon's
// environment changes that); chatd treats SIGINT and SIGTERM alike and
// drains for CHATD_SHUTDOWN_GRACE (15 s by default), then may spend up to
// about 27 s on final writes. kill_timeout is the grace + 30 s, so pm2
// never SIGKILLs a server that is still finishing answers: raise it with
// the grace (and by CHATD_SHUTDOWN_DELAY when set).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const bin = process.env.CHATD_BIN || '/usr/local/bin/chatd';
const envFile = process.env.CHATD_ENV_FILE || '/etc/chatd/chatd.env';
const logDir = process.env.CHATD_LOG_DIR || '/var/log/chatd';
const workdir = process.env.CHATD_WORKDIR || '/var/lib/chatd';

// readEnvFile parses the KEY=VALUE lines of an environment file, in the
// subset of systemd's EnvironmentFile syntax the example uses: blank lines
// and lines starting with # are ignored, a value may be wrapped in single or
// double quotes. A missing file is an error: starting without the JWT secret
// path or the database URI would start the wrong server.
function readEnvFile(file) {
  const env = {};
  const text = fs.readFileSync(file, 'utf8');
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: not KEY=VALUE: ${line}`);
    let value = m[2].trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    env[m[1]] = value;
  }
  return env;
}

module.exports = {
  apps: [
    {
      name: 'chatd',
      script: bin,
      interpreter: 'none', // a native binary, not a Node script
      exec_mode: 'fork', // one process; chatd uses every core by itself
      instances: 1,
      cwd: workdir,
      env: readEnvFile(envFile),

      // Restarts: on any exit, after 100 ms, then 150 ms, 225 ms, ... up to
      // 15 s while it keeps failing; the delay resets after 30 s of uptime.
      autorestart: true,
      exp_backoff_restart_delay: 100,
      min_uptime: '10s', // an exit sooner than this counts as unstable
      max_restarts: 30, // unstable restarts before pm2 gives up (status errored)
      max_memory_restart: '1G', // a leak is restarted before the OOM killer acts
      kill_timeout: 45000, // ms: CHATD_SHUTDOWN_GRACE (15 s by default) + 30 s

      // Logs: the server writes JSON lines (log/slog) to stdout, start-up
      // failures too (the line "chatd stopped"), so chatd.out.log is where
      // to look; stderr, chatd.error.log, gets panics only (a failed start
      // goes to stderr only at a terminal, never under pm2). pm2 prefixes
      // each line with the time ("2026-01-02T15:04:05.000+00:00: {...}");
      // pm2-logrotate (deploy/pm2-setup.sh) rotates the files.
      // log_date_format alone turns the prefix on: "time: true" would
      // replace this format by one without milliseconds and time zone.
      out_file: path.join(logDir, 'chatd.out.log'),
      error_file: path.join(logDir, 'chatd.error.log'),
      merge_logs: true, // no "-<id>" suffix in the file names
      log_date_format: 'YYYY-MM-DDTHH:mm:ss.SSSZ',
    },
  ],
};
