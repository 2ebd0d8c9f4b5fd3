// The end-to-end harness: builds and starts the real fake OpenAI server and
// the real chatd server (embedded SQLite in a temp dir, the built front end),
// an optional proxy that refuses WebSocket upgrades, and Debian's Chromium
// driven by playwright-core.
//
// Modes (environment):
//   E2E_EMBEDDED=1  chatd serves the front end built into it (-tags embedui)
//                   instead of frontend/dist from disk.
//   E2E_NGINX=1     the browser reaches every server through the
//                   repository's nginx.conf over HTTPS (deploy/nginx-local.sh:
//                   TLS with a fresh self-signed certificate the contexts
//                   accept, HTTP/2, nginx's security headers and CSP, its
//                   static files and its proxying of /api, /ws and the SSE
//                   routes). Needs Debian's nginx (.ci/run installs it).
//
// In every mode each browser context records Content-Security-Policy
// violations (securitypolicyviolation events, seen by an init script before
// any app script runs, and Chromium's console reports of them);
// takeViolations() hands them to the tests, and stop() fails when any were
// recorded.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before } from 'node:test';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const frontendDir = resolve(here, '..');
export const repoDir = resolve(frontendDir, '..');
/**
 * artifactsDir holds the logs and screenshots of one run; each mode has its
 * own, so that `make test` can run the modes side by side.
 */
export const artifactsDir = join(
  frontendDir,
  'test-results',
  process.env.E2E_NGINX === '1' ? 'e2e-nginx' : process.env.E2E_EMBEDDED === '1' ? 'e2e-embedded' : 'e2e',
);

/**
 * ephemeralLow is the lowest local port the kernel gives outgoing
 * connections. A busy machine (a load test next door) holds thousands of
 * them, and a listener cannot bind a port one of them uses.
 */
function ephemeralLow() {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // not Linux: the IANA range
  }
  return 49152;
}

/**
 * freePort returns a loopback port nothing uses: a random one below the
 * ephemeral range that a listener could bind a moment ago (so outgoing
 * connections do not take it before the server binds it), else one the
 * kernel picks.
 */
async function freePort() {
  const low = ephemeralLow();
  const min = 10000;
  for (let i = 0; low - min >= 1000 && i < 50; i++) {
    const port = min + Math.floor(Math.random() * (low - min));
    const probe = net.createServer();
    probe.listen(port, '127.0.0.1');
    try {
      await once(probe, 'listening');
    } catch {
      continue; // taken
    }
    probe.close();
    await once(probe, 'close');
    return port;
  }
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

/** httpsReady says whether GET url answers 200, verifying the server with the test certificate ca. */
function httpsReady(url, ca) {
  const u = new URL(url);
  return new Promise((resolvePromise) => {
    // Connect to the address nginx listens on; SNI and Host name the site
    // (other names get no TLS handshake, as in production).
    const req = https.get(
      { host: '127.0.0.1', port: u.port, path: u.pathname, servername: u.hostname, headers: { Host: u.host }, ca, timeout: 5000 },
      (res) => {
        res.resume();
        resolvePromise(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolvePromise(false));
  });
}

/**
 * startNginx runs deploy/nginx-local.sh (the repository's nginx.conf over
 * TLS) in front of 127.0.0.1:upstreamPort, serving frontend/dist, and
 * returns its https base URL once it answers /readyz through the proxy.
 * Its files (rendered configuration, certificate, access and error logs) are
 * kept in test-results/e2e-nginx/nginx-<name>/. The ports are chosen here (the
 * script's own choice can land on a port an outgoing connection holds), and
 * a start that fails (a port taken before nginx binds it) is retried.
 */
async function startNginx(name, upstreamPort) {
  const script = join(repoDir, 'deploy', 'nginx-local.sh');
  const dir = join(artifactsDir, `nginx-${name}`);
  for (const f of readdirSync(artifactsDir)) if (f.startsWith(`nginx-${name}-attempt`)) rmSync(join(artifactsDir, f));
  let lastError;
  for (let attempt = 1; attempt <= 4; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    const logName = attempt === 1 ? `nginx-${name}` : `nginx-${name}-attempt${attempt}`;
    const child = startProcess(
      logName,
      'bash',
      [
        script,
        '--upstream',
        `127.0.0.1:${upstreamPort}`,
        '--root',
        join(frontendDir, 'dist'),
        '--https-port',
        String(httpsPort),
        '--http-port',
        String(httpPort),
        '--dir',
        dir,
      ],
      {},
      artifactsDir,
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    try {
      const printed = await waitFor(
        () => {
          if (exited()) return { exited: true };
          const base = /^BASE_URL=(\S+)$/m.exec(out)?.[1];
          const cert = /^CERT=(\S+)$/m.exec(out)?.[1];
          return base && cert ? { base, cert } : null;
        },
        { timeout: 60000, what: `nginx-local.sh (${name}) to print BASE_URL` },
      );
      if (printed.exited) throw new Error(`nginx-local.sh exited before printing BASE_URL (see ${logName}.log)`);
      const ca = readFileSync(printed.cert);
      const ready = await waitFor(async () => exited() || (await httpsReady(`${printed.base}/readyz`, ca)), {
        timeout: 60000,
        what: `${printed.base}/readyz through nginx (${name})`,
      });
      if (exited()) throw new Error(`nginx exited before serving (see ${logName}.log)`);
      if (ready) return { base: printed.base, child };
    } catch (err) {
      lastError = err;
      await stopProcess(child);
    }
  }
  throw new Error(
    `nginx in front of 127.0.0.1:${upstreamPort} did not start: ${lastError?.message} ` +
      `(deploy/nginx-local.sh needs nginx and openssl: apt-get install -y nginx; logs in ${artifactsDir}/nginx-${name}*.log and ${dir}/)`,
  );
}

/**
 * watchContext makes a browser context record CSP violations into seen: the
 * securitypolicyviolation events of every document (an init script, before
 * any app script, hands them to a binding) and Chromium's console reports.
 * Every other console error goes to consoleLog (a stream), for reading
 * after a run: the tests provoke many on purpose (a 401 for a wrong
 * password, 502s for refused WebSocket upgrades, cut connections).
 */
async function watchContext(context, seen, consoleLog) {
  await context.exposeBinding('__e2eCspViolation', ({ page }, v) => {
    seen.push({ via: 'event', page: page?.url(), ...v });
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__e2eCspViolation?.({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        sample: e.sample,
        source: e.sourceFile,
        line: e.lineNumber,
        disposition: e.disposition,
      });
    });
  });
  const watchPage = (page) =>
    page.on('console', (m) => {
      if (/Content[ -]Security[ -]Policy/i.test(m.text())) seen.push({ via: 'console', page: page.url(), type: m.type(), text: m.text() });
      else if (m.type() === 'error') consoleLog.write(`${new Date().toISOString()} ${page.url()}: ${m.text()}\n`);
    });
  context.pages().forEach(watchPage);
  context.on('page', watchPage);
}

/**
 * upstreamsFile writes the CHATD_UPSTREAMS_FILE of the main chatd: two
 * upstreams (both served by the one fake OpenAI server) so the picker groups
 * models under two labels; fake-large bounds maxTokens, fake-reasoner is
 * the model the reasoning tests pick (the fake emits reasoning on request),
 * and fake-tiny has a context window small enough that a few long
 * messages no longer fit.
 */
function upstreamsFile(dir, fakePort) {
  const baseURL = `http://127.0.0.1:${fakePort}/v1`;
  const file = join(dir, 'upstreams.json');
  const config = {
    default: 'fake-mini',
    upstreams: [
      {
        name: 'fake',
        label: 'Fake AI',
        baseURL,
        apiKey: 'test',
        models: [{ id: 'fake-mini' }, { id: 'fake-large', maxOutputTokens: 4096 }],
      },
      {
        name: 'local',
        label: 'Local (fake reasoner)',
        baseURL,
        apiKey: 'test',
        models: [{ id: 'fake-reasoner', name: 'Fake reasoner' }, { id: 'fake-tiny', name: 'Fake tiny', contextTokens: 400 }],
      },
    ],
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * useStack starts the stack before a test file's tests and stops it after
 * them, and checks after each test that the browser recorded no
 * Content-Security-Policy violation. It returns the stack, whose fields are
 * filled in once it has started.
 */
export function useStack() {
  const stack = {};
  before(async () => {
    Object.assign(stack, await startStack());
  });
  after(async () => {
    await stack.stop?.();
  });
  afterEach(() => {
    assert.deepEqual(stack.takeViolations?.() ?? [], [], 'no Content-Security-Policy violation');
  });
  return stack;
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
  const viaNginx = process.env.E2E_NGINX === '1';
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
      CHATD_UPSTREAMS_FILE: upstreamsFile(work, fakePort),
      // Set beside the file, these stop the start: not the shell's.
      OPENAI_BASE_URL: '',
      OPENAI_MODELS: '',
      OPENAI_MODELS_FROM_UPSTREAM: '',
      OPENAI_REASONING_MODELS: '',
      OPENAI_INLINE_THINKING: '',
      CHATD_BCRYPT_COST: '4',
      // The suite signs up dozens of accounts from one address, and one
      // test creates 35 conversations at once: the per-IP sign-up and the
      // per-user creation limits (tested in Go) would refuse them.
      CHATD_REGISTRATIONS_PER_HOUR_IP: '100000',
      CHATD_CONVERSATIONS_PER_MINUTE: '100000',
      // As deployed behind nginx (deploy/chatd.env.example).
      ...(viaNginx ? { CHATD_TRUSTED_PROXIES: '127.0.0.1' } : {}),
      ...(embedded ? {} : { CHATD_STATIC_DIR: join(frontendDir, 'dist') }),
    },
    artifactsDir,
  );
  const direct = `http://127.0.0.1:${chatPort}`;
  // Through nginx, the refusing proxy sits between nginx and chatd: nginx
  // passes the browser's upgrade on and relays the proxy's 502, so the
  // fallback tests run the SSE routes through nginx's streaming locations.
  const nginxes = [];
  let proxy;
  let base = direct;
  let proxyBase;
  try {
    await waitFor(async () => (await fetch(`${direct}/readyz`)).ok, { timeout: 60000, what: 'chatd /readyz' });
    proxy = await refusingProxy(chatPort);
    proxyBase = `http://127.0.0.1:${proxy.port}`;
    if (viaNginx) {
      const started = await Promise.allSettled([startNginx('main', chatPort), startNginx('refusing', proxy.port)]);
      for (const r of started) if (r.status === 'fulfilled') nginxes.push(r.value.child);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      [base, proxyBase] = started.map((r) => r.value.base);
    }
  } catch (err) {
    // Leave nothing running behind a failed start.
    for (const child of nginxes) await stopProcess(child);
    proxy?.server.close();
    await stopProcess(chatd);
    await stopProcess(fake);
    rmSync(work, { recursive: true, force: true });
    throw err;
  }

  const violations = [];
  let reported = 0;
  const consoleLog = createWriteStream(join(artifactsDir, 'console-errors.log'));
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
  // Every context the tests open records CSP violations and, through nginx,
  // accepts the test certificate (the page is still an https: origin under
  // nginx's headers).
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options = {}) => {
    const context = await newContext({ ...options, ...(viaNginx ? { ignoreHTTPSErrors: true } : {}) });
    await watchContext(context, violations, consoleLog);
    return context;
  };

  async function expectedText(cfg) {
    const args = ['-tokens', String(cfg.tokens ?? 0), '-mode', cfg.mode ?? 'text'];
    if (cfg.tag) args.push('-tag', cfg.tag);
    const { stdout } = await run(join(bin, 'fakeexpect'), args);
    return JSON.parse(stdout);
  }

  /** expectedReasoning is the exact reasoning the fake streams for `reasoning=N`. */
  async function expectedReasoning(n) {
    const { stdout } = await run(join(bin, 'fakeexpect'), ['-reasoning', String(n), '-what', 'reasoning']);
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
        // A directory per server: a data directory is locked by the chatd using it.
        CHATD_DATA_DIR: join(work, `data-demo-${port}`),
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: '',
        OPENAI_MODELS: '',
        CHATD_BCRYPT_COST: '4',
        CHATD_REGISTRATIONS_PER_HOUR_IP: '1000',
        ...(embedded ? {} : { CHATD_STATIC_DIR: join(frontendDir, 'dist') }),
      },
      artifactsDir,
    );
    extra.push(child);
    const demoDirect = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${demoDirect}/readyz`)).ok, { timeout: 60000, what: 'demo chatd /readyz' });
    if (!viaNginx) return demoDirect;
    const demo = await startNginx('demo', port);
    nginxes.push(demo.child);
    return demo.base;
  }

  /**
   * startClusterPair starts two chatd instances joined as one cluster (the
   * way docs/scale.md deploys them): cmd/devstack runs the MongoDB-compatible
   * store (FerretDB) and a NATS server with JetStream they share, and both
   * instances sign tokens with the same secret and stream from the fake
   * upstream. Returns the two base URLs (two origins; through nginx, one
   * nginx each).
   */
  async function startClusterPair() {
    await goBuild(join(bin, 'devstack'), './cmd/devstack');
    const devstack = startProcess('devstack', join(bin, 'devstack'), ['-dir', join(work, 'devstack')], {}, artifactsDir);
    extra.push(devstack);
    let out = '';
    devstack.stdout.on('data', (chunk) => { out += chunk; });
    const shared = await waitFor(() => {
      const uri = /^MONGODB_URI=(\S+)$/m.exec(out)?.[1];
      const nats = /^CHATD_NATS_URL=(\S+)$/m.exec(out)?.[1];
      return uri && nats ? { uri, nats } : null;
    }, { timeout: 60000, what: 'devstack to print its URLs' });
    const bases = [];
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const child = startProcess(
        `chatd-cluster-${name}`,
        join(bin, 'chatd'),
        [],
        {
          CHATD_ADDR: `127.0.0.1:${port}`,
          CHATD_DATA_DIR: join(work, `data-cluster-${name}`),
          MONGODB_URI: shared.uri,
          MONGODB_DATABASE: 'chatd_e2e_cluster',
          CHATD_NATS_URL: shared.nats,
          CHATD_INSTANCE_ID: `e2e-${name}`,
          JWT_SECRET: 'e2e-cluster-secret-of-at-least-32-bytes',
          OPENAI_BASE_URL: `http://127.0.0.1:${fakePort}/v1`,
          OPENAI_API_KEY: 'test',
          OPENAI_MODELS: 'fake-mini,fake-large',
          CHATD_BCRYPT_COST: '4',
          ...(viaNginx ? { CHATD_TRUSTED_PROXIES: '127.0.0.1' } : {}),
          ...(embedded ? {} : { CHATD_STATIC_DIR: join(frontendDir, 'dist') }),
        },
        artifactsDir,
      );
      extra.push(child);
      const instance = `http://127.0.0.1:${port}`;
      // One at a time: the first sets up JetStream's buckets and stream.
      await waitFor(async () => (await fetch(`${instance}/readyz`).catch(() => ({ ok: false }))).ok,
        { timeout: 60000, what: `cluster chatd ${name} /readyz` });
      if (!viaNginx) {
        bases.push(instance);
        continue;
      }
      const site = await startNginx(`cluster-${name}`, port);
      nginxes.push(site.child);
      bases.push(site.base);
    }
    return bases;
  }

  /** takeViolations returns the CSP violations recorded since the last call. */
  function takeViolations() {
    const fresh = violations.slice(reported);
    reported = violations.length;
    return fresh;
  }

  async function stop() {
    await browser.close().catch(() => undefined);
    consoleLog.end();
    for (const child of nginxes) await stopProcess(child);
    // Newest first: cluster instances stop before the store and NATS they use.
    for (const child of [...extra].reverse()) await stopProcess(child);
    proxy.server.closeAllConnections?.();
    proxy.server.close();
    await stopProcess(chatd);
    await stopProcess(fake);
    rmSync(work, { recursive: true, force: true });
    if (violations.length > 0) {
      throw new Error(`${violations.length} Content-Security-Policy violation(s) during the run:\n${violations.map((v) => JSON.stringify(v)).join('\n')}`);
    }
  }

  return { base, proxyBase, viaNginx, browser, expectedText, expectedReasoning, startDemoServer, startClusterPair, takeViolations, stop };
}
