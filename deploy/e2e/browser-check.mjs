// browser-check.mjs drives the real front end in Chromium through nginx over
// HTTPS and reports every Content-Security-Policy violation and page error
// seen while a person signs up, sends a message and reads the streamed
// answer (markdown with a code block, rendered and highlighted).
//
// Run by deploy/e2e (browser_test.go); by hand:
//   BASE_URL=https://localhost:8443 node deploy/e2e/browser-check.mjs
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (a PNG path to save the final page to, optional).
// Prints one JSON object on stdout: {ok, steps, violations, errors, ...}.
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
if (!base) {
  console.error('BASE_URL is required');
  process.exit(2);
}
const result = { ok: false, steps: [], violations: [], errors: [], answer: '', transport: '' };
const step = (s) => result.steps.push(s);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Chromium refuses its sandbox as root (CI runs as root).
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
try {
  // The test certificate is self-signed: accept it, nothing else changes
  // (the page is still an https: origin under nginx's headers).
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  // Record violations as the page sees them, before any app script runs.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push({
        directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample,
        source: e.sourceFile, line: e.lineNumber,
      });
    });
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    const text = m.text();
    if (m.type() === 'error' || /Content Security Policy/i.test(text)) result.errors.push(`console ${m.type()}: ${text}`);
  });
  page.on('pageerror', (e) => result.errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    const failure = r.failure()?.errorText ?? '';
    // An aborted request is the app cancelling (e.g. a fetch it replaced).
    if (!/ERR_ABORTED/.test(failure)) result.errors.push(`request failed: ${r.method()} ${r.url()} ${failure}`);
  });
  page.on('websocket', (ws) => {
    result.transport = 'websocket';
    ws.on('socketerror', (e) => result.errors.push(`websocket error: ${e}`));
  });

  const resp = await page.goto(base + '/', { waitUntil: 'load' });
  step(`loaded ${resp?.status()} ${resp?.headers()['content-security-policy'] ? 'with CSP' : 'WITHOUT CSP'}`);

  // Sign up.
  const email = `browser-${Date.now()}@example.com`;
  const toRegister = page.getByRole('button', { name: /create (an )?account|sign up|register/i }).first();
  const nameField = page.getByLabel(/^name|display name|your name/i);
  if ((await nameField.count()) === 0) await toRegister.click();
  await page.getByLabel(/name/i).first().fill('Browser Check');
  await page.getByLabel(/e-?mail/i).first().fill(email);
  await page.getByLabel(/password/i).first().fill('correct horse battery');
  await page.getByRole('button', { name: /create (an )?account|sign up|register/i }).last().click();
  step('registered');

  // Send one message; the fake model answers with a markdown document
  // (heading, table, fenced code with a language).
  const composer = page.getByRole('textbox').last();
  await composer.waitFor({ timeout: 15000 });
  await composer.fill('Show me markdown [[fake mode=markdown delay=5ms]]');
  await composer.press('Enter');
  step('sent');
  const code = page.locator('pre code.hljs, pre code[class*="language-"]').first();
  await code.waitFor({ timeout: 30000 });
  step('answer rendered with a highlighted code block');
  // Let the stream finish and the page settle.
  await page.waitForTimeout(1000);
  result.answer = (await code.textContent())?.slice(0, 200) ?? '';
  result.violations = await page.evaluate(() => window.__cspViolations);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  result.ok = true;
} catch (e) {
  result.errors.push(`check failed: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
