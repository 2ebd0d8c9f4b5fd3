// The end-to-end harness: builds and starts the real fake OpenAI server and
// the real chatd server (embedded SQLite in a temp dir, the built front end),
// an optional proxy that refuses WebSocket upgrades, and Debian's Chromium
// driven by playwright-core.

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const frontendDir = resolve(here, '..');
export const repoDir = resolve(frontendDir, '..');
export const artifactsDir = join(frontendDir, 'test-results', 'e2e');

/** freePort asks the kernel for an unused loopback port. */
async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** waitFor polls fn until it returns a truthy value or the deadline passes. */
export async function waitFor(fn, { timeout = 30000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function goBuild(out, pkg, tags) {
  const args = ['build', '-o', out];
  if (tags) args.push('-tags', tags);
  args.push(pkg);
  await run('go', args, { cwd: repoDir, maxBuffer: 16 << 20 });
}

function startProcess(name, bin, args, env, logDir) {
  const log = createWriteStream(join(logDir, `${name}.log`));
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // The log ends once, after both pipes are drained ('close' follows them and
  // 'exit'); ending it with the pipes raced with the exit line.
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  child.on('close', (code, signal) => log.end(`\n[${name} exited: code=${code} signal=${signal}]\n`));
  return child;
}

async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
  await once(child, 'exit').catch(() => undefined);
  clearTimeout(timer);
}

/**
 * refusingProxy forwards HTTP requests (streaming the responses, so SSE
 * works) to target but answers every WebSocket upgrade with 502, as a proxy
 * without WebSocket support does.
 */
async function refusingProxy(targetPort) {
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        const headers = { ...r.headers };
        for (const h of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade']) delete headers[h];
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: server.address().port };
}

/** startStack builds and starts everything; call stop() when done. */
export async function startStack() {
  mkdirSync(artifactsDir, { recursive: true });
  const dist = join(frontendDir, 'dist', 'index.html');
  if (!existsSync(dist)) {
    await run('npx', ['vite', 'build'], { cwd: frontendDir, maxBuffer: 16 << 20 });
  }
  const work = mkdtempSync(join(tmpdir(), 'chatd-e2e-'));
  const bin = join(work, 'bin');
  mkdirSync(bin);
  const embedded = process.env.E2E_EMBEDDED === '1';
  await Promise.all([
    goBuild(join(bin, 'chatd'), './cmd/chatd', embedded ? 'embedui' : ''),
    goBuild(join(bin, 'fakeai'), './cmd/fakeai'),
    goBuild(join(bin, 'fakeexpect'), './frontend/e2e/fakeexpect'),
  ]);

  const [fakePort, chatPort] = [await freePort(), await freePort()];
  const fake = startProcess('fakeai', join(bin, 'fakeai'), ['-addr', `127.0.0.1:${fakePort}`, '-delay', '30ms'], {}, artifactsDir);
  const chatd = startProcess(
    'chatd',
    join(bin, 'chatd'),
    [],
    {
      CHATD_ADDR: `127.0.0.1:${chatPort}`,
      CHATD_DATA_DIR: join(work, 'data'),
      OPENAI_BASE_URL: `http://127.0.0.1:${fakePort}/v1`,
      OPENAI_API_KEY: 'test',
      OPENAI_MODELS: 'fake-mini,fake-large',
      CHATD_BCRYPT_COST: '4',
      ...(embedded ? {} : { CHATD_STATIC_DIR: join(frontendDir, 'dist') }),
    },
    artifactsDir,
  );
  const base = `http://127.0.0.1:${chatPort}`;
  await waitFor(async () => (await fetch(`${base}/readyz`)).ok, { timeout: 60000, what: 'chatd /readyz' });
  const proxy = await refusingProxy(chatPort);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });

  async function expectedText(cfg) {
    const args = ['-tokens', String(cfg.tokens ?? 0), '-mode', cfg.mode ?? 'text'];
    if (cfg.tag) args.push('-tag', cfg.tag);
    const { stdout } = await run(join(bin, 'fakeexpect'), args);
    return JSON.parse(stdout);
  }

  const extra = [];
  /** startDemoServer starts a second chatd with no upstream: only the offline demo model. */
  async function startDemoServer() {
    const port = await freePort();
    const child = startProcess(
      'chatd-demo',
      join(bin, 'chatd'),
      [],
      {
        CHATD_ADDR: `127.0.0.1:${port}`,
        CHATD_DATA_DIR: join(work, 'data-demo'),
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: '',
        OPENAI_MODELS: '',
        CHATD_BCRYPT_COST: '4',
        ...(embedded ? {} : { CHATD_STATIC_DIR: join(frontendDir, 'dist') }),
      },
      artifactsDir,
    );
    extra.push(child);
    const demoBase = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${demoBase}/readyz`)).ok, { timeout: 60000, what: 'demo chatd /readyz' });
    return demoBase;
  }

  async function stop() {
    await browser.close().catch(() => undefined);
    for (const child of extra) await stopProcess(child);
    proxy.server.closeAllConnections?.();
    proxy.server.close();
    await stopProcess(chatd);
    await stopProcess(fake);
    rmSync(work, { recursive: true, force: true });
  }

  return { base, proxyBase: `http://127.0.0.1:${proxy.port}`, browser, expectedText, startDemoServer, stop };
}
