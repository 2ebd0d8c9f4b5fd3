// browser-check.mjs drives the real front end in Chromium through nginx over
// HTTPS and reports every Content-Security-Policy violation and page error
// seen while a person signs up, sends a message and reads the streamed
// answer (markdown with a code block, rendered and highlighted).
//
// Run by deploy/e2e (browser_test.go); by hand:
//   BASE_URL=https://localhost:8443 node deploy/e2e/browser-check.mjs
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (a PNG path to save the final page to, optional), MATH_BASE_URL
// (optional: a site running the offline demo model, which quotes the prompt,
// so TeX in the prompt comes back as rendered math: KaTeX's inline styles
// must apply under the CSP).
// Prints one JSON object on stdout: {ok, steps, violations, errors, ...}.
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
if (!base) {
  console.error('BASE_URL is required');
  process.exit(2);
}
const result = { ok: false, steps: [], violations: [], errors: [], answer: '', transport: '', math: null };
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

  page.on('dialog', async (d) => {
    result.errors.push(`a script ran: ${d.type()} "${d.message()}"`);
    await d.dismiss();
  });

  // A deep link: nginx's SPA fallback serves the app, its router shows the
  // registration form.
  const resp = await page.goto(base + '/register', { waitUntil: 'load' });
  step(`loaded /register: ${resp?.status()} ${resp?.headers()['content-security-policy'] ? 'with CSP' : 'WITHOUT CSP'}`);

  // Sign up.
  await page.getByLabel('Name').fill('Browser Check');
  await page.getByLabel('Email').fill(`browser-${Date.now()}@example.com`);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.waitFor({ timeout: 20000 });
  step('registered');

  // Send one message; the fake model answers with a markdown document
  // (heading, list, table, fenced code with a language).
  await composer.fill('Show me markdown [[fake mode=markdown delay=5ms]]');
  await composer.press('Enter');
  const code = page.locator('.msg-assistant pre code.hljs, .msg-assistant pre code[class*="language-"]').first();
  await code.waitFor({ timeout: 30000 });
  await page.locator('.msg-assistant table').first().waitFor({ timeout: 30000 });
  step('answer rendered: highlighted code block and table');
  result.answer = (await code.textContent())?.slice(0, 200) ?? '';

  // A second answer full of script injection payloads: the renderer must
  // neutralise them, so nothing runs and nothing even reaches the CSP.
  await page.getByRole('button', { name: 'Send message' }).waitFor({ timeout: 30000 });
  await composer.fill('Payloads please [[fake mode=xss delay=5ms]]');
  await composer.press('Enter');
  await page.getByText('End of payloads.').waitFor({ timeout: 30000 });
  step('payload answer rendered');
  // Let the stream finish and the page settle.
  await page.waitForTimeout(1000);
  result.violations = await page.evaluate(() => window.__cspViolations);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });

  if (process.env.MATH_BASE_URL) {
    const mathPage = await context.newPage();
    await mathPage.goto(process.env.MATH_BASE_URL + '/register', { waitUntil: 'load' });
    await mathPage.getByLabel('Name').fill('Math Check');
    await mathPage.getByLabel('Email').fill(`math-${Date.now()}@example.com`);
    await mathPage.getByLabel('Password').fill('correct horse battery');
    await mathPage.getByRole('button', { name: 'Create account' }).click();
    const box = mathPage.getByRole('textbox', { name: 'Message' });
    await box.waitFor({ timeout: 20000 });
    await box.fill('Euler: $e^{i\\pi} + 1 = 0$ and $\\sqrt{x^2+1}$');
    await box.press('Enter');
    const katex = mathPage.locator('.msg-assistant .katex').first();
    await katex.waitFor({ timeout: 30000 });
    await mathPage.getByText('To chat with a real model').waitFor({ timeout: 30000 });
    // KaTeX sizes its struts with style="height:…"; under a CSP without
    // 'unsafe-inline' for styles the attribute is dropped and math collapses.
    result.math = await mathPage.evaluate(() => {
      const styled = [...document.querySelectorAll('.msg-assistant .katex [style]')];
      return {
        elements: document.querySelectorAll('.msg-assistant .katex').length,
        styled: styled.length,
        applied: styled.filter((el) => el.style.length > 0).length,
      };
    });
    result.violations.push(...(await mathPage.evaluate(() => window.__cspViolations)));
    step(`math rendered: ${JSON.stringify(result.math)}`);
    if (process.env.SCREENSHOT) await mathPage.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-math.png') });
  }
  result.ok = true;
} catch (e) {
  result.errors.push(`check failed: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
