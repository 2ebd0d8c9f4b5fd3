// Page helpers for the end-to-end tests: they act as a user would (typing,
// clicking) and read state from the DOM, plus the client's debug hook
// window.__chatd for the raw text it assembled from deltas.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { artifactsDir, waitFor } from './harness.mjs';

let userSeq = 0;

/** uniqueEmail returns an email no other test uses. */
export function uniqueEmail(tag) {
  return `${tag}-${Date.now()}-${++userSeq}@example.com`;
}

/** shot saves a screenshot under frontend/test-results/e2e/. */
export async function shot(page, name) {
  await page.screenshot({ path: join(artifactsDir, `${name}.png`) });
}

/** watch records page errors and dialogs, so a test can assert there were none. */
export function watch(page) {
  const seen = { errors: [], dialogs: [] };
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('dialog', async (d) => {
    seen.dialogs.push(d.message());
    await d.dismiss().catch(() => undefined);
  });
  return seen;
}

/** register creates an account through the form and waits for the chat page. */
export async function register(page, base, email, password = 'correct horse battery') {
  await page.goto(`${base}/register`);
  await page.getByLabel('Name').fill('E2E User');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByLabel('Message', { exact: true }).waitFor();
  return { email, password };
}

/** login signs in through the form. */
export async function login(page, email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** send types a message and presses Enter. */
export async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** shown returns the messages of the shown path, as the client holds them. */
export function shown(page) {
  return page.evaluate(() => window.__chatd.shown());
}

/** lastAnswer returns the last assistant message of the shown path. */
export async function lastAnswer(page) {
  const path = await shown(page);
  return path.filter((m) => m.role === 'assistant').at(-1);
}

/** waitAnswerStarted waits until the shown path ends with a streaming answer holding text. */
export async function waitStreaming(page, minChars = 1) {
  return waitFor(
    async () => {
      const a = await lastAnswer(page);
      return a && a.status === 'streaming' && a.content.length >= minChars ? a : null;
    },
    { what: 'a streaming answer' },
  );
}

/**
 * waitDone waits until the shown path ends with an answer that has ended.
 * The path must end with it: right after a send the path ends with the
 * question, and the answer before it, long ended, is not the one waited
 * for.
 */
export async function waitDone(page, timeout = 60000) {
  return waitFor(
    async () => {
      const a = (await shown(page)).at(-1);
      return a && a.role === 'assistant' && a.status !== 'streaming' && !a.id.startsWith('local:') ? a : null;
    },
    { timeout, what: 'the answer to end' },
  );
}

/** answerText is the rendered text of the last answer in the DOM. */
export function answerText(page) {
  return page.locator('.msg-assistant').last().locator('.msg-body').innerText();
}

/**
 * waitAnswerText waits until the last answer's rendered text equals
 * expected, whitespace aside. The client's state can end before the page
 * shows it: the store's notifications are throttled and the markdown is
 * rendered from a deferred value.
 */
export async function waitAnswerText(page, expected) {
  const want = normalize(expected);
  let shownText = '';
  try {
    await waitFor(async () => (shownText = normalize(await answerText(page))) === want, { what: 'the answer on the page' });
  } catch {
    assert.equal(shownText, want);
  }
}

/**
 * sampleGrowth reads the DOM text of the last answer while it streams and
 * returns the distinct lengths seen, in order.
 */
export async function sampleGrowth(page, timeout = 60000) {
  const lengths = [];
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const state = await page.evaluate(() => {
      const el = [...document.querySelectorAll('.msg-assistant')].at(-1);
      return el ? { status: el.getAttribute('data-status'), len: el.querySelector('.msg-body')?.textContent?.length ?? 0 } : null;
    });
    if (state && state.len > 0 && lengths.at(-1) !== state.len) lengths.push(state.len);
    if (state && state.status !== 'streaming' && lengths.length > 0) return lengths;
    await new Promise((r) => setTimeout(r, 60));
  }
  throw new Error('the answer did not end while sampling');
}

/**
 * sampleStreaming reads the DOM text of the last answer while it streams,
 * until it has seen `steps` distinct lengths; it returns them in order. It
 * fails if the answer ends first.
 */
export async function sampleStreaming(page, steps = 4, timeout = 60000) {
  const lengths = [];
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const state = await page.evaluate(() => {
      const el = [...document.querySelectorAll('.msg-assistant')].at(-1);
      return el ? { status: el.getAttribute('data-status'), len: el.querySelector('.msg-body')?.textContent?.length ?? 0 } : null;
    });
    if (state?.status === 'streaming' && state.len > 0 && lengths.at(-1) !== state.len) {
      lengths.push(state.len);
      if (lengths.length >= steps) return lengths;
    } else if (state && state.status !== 'streaming' && lengths.length > 0) {
      throw new Error(`the answer ended after ${lengths.length} samples: ${lengths}`);
    }
    await new Promise((r) => setTimeout(r, 60));
  }
  throw new Error(`the answer did not grow ${steps} times (seen ${lengths})`);
}

/** normalize collapses whitespace, to compare rendered text with source text. */
export function normalize(s) {
  return s.replace(/\s+/g, ' ').trim();
}

/** assertInert fails when the messages hold executable markup. */
export async function assertInert(page) {
  const bad = await page.evaluate(() => {
    const out = [];
    for (const root of document.querySelectorAll('.msg')) {
      if (root.querySelector('script, iframe, object, embed, frame')) out.push('dangerous element');
      for (const el of root.querySelectorAll('*')) {
        for (const a of el.attributes) {
          if (a.name.startsWith('on')) out.push(`${el.tagName} ${a.name}`);
          if (['href', 'src', 'action', 'formaction'].includes(a.name) && /^\s*(javascript|vbscript|data):/i.test(a.value)) {
            out.push(`${el.tagName} ${a.name}=${a.value}`);
          }
        }
      }
    }
    return out;
  });
  assert.deepEqual(bad, []);
}

/** conversationId reads the open conversation's id from the URL. */
export function conversationId(page) {
  const m = /\/c\/([0-9a-f]{24})/.exec(page.url());
  return m ? m[1] : null;
}

/** statusLine returns the connection status line's transport and text. */
export function statusLine(page) {
  return page.evaluate(() => {
    const el = document.querySelector('.status-line');
    return el ? { transport: el.getAttribute('data-transport'), state: el.getAttribute('data-state'), text: el.textContent } : null;
  });
}

/** connected waits until the page's live channel is up. */
export function connected(page) {
  return waitFor(async () => (await statusLine(page))?.state === 'connected', { what: 'the live channel to connect' });
}

/** fallbackConnected waits for the SSE fallback to be up and returns the status line. */
export function fallbackConnected(page) {
  return waitFor(
    async () => {
      const s = await statusLine(page);
      return s?.transport === 'sse' && s.state === 'connected' ? s : null;
    },
    { what: 'the SSE fallback to connect' },
  );
}

/** phone is the viewport of a phone. */
export const phone = { width: 390, height: 844 };

/**
 * anotherBrowser signs creds in at base in a new browser context (no
 * storage shared with the others) and waits for the chat page.
 */
export async function anotherBrowser(stack, base, creds, viewport) {
  const context = await stack.browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const seen = watch(page);
  await page.goto(base + '/login');
  await login(page, creds.email, creds.password);
  await page.getByLabel('Message', { exact: true }).waitFor();
  return { context, page, seen };
}

/**
 * threeSessions signs one new account in three places: a tab at phone
 * width (the dialogs open from the drawer) that registered and has one
 * answered conversation, a second tab of the same browser at desktop
 * width on that conversation, and another browser (no shared storage),
 * all connected. instrument(page) runs on each tab of the first browser
 * before it loads anything. It returns the credentials, the
 * conversation's id, the two browser contexts, the pages and their
 * watchers (see watch).
 */
export async function threeSessions(stack, tag, instrument = () => {}) {
  const desktop = { width: 1280, height: 800 };
  const context = await stack.browser.newContext({ viewport: phone });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  instrument(page);
  const seen = watch(page);
  const creds = await register(page, stack.base, uniqueEmail(tag));
  await send(page, 'remember this [[fake tokens=5 delay=5ms]]');
  await waitDone(page);
  const id = conversationId(page);

  const page2 = await context.newPage();
  page2.setDefaultTimeout(30000);
  await page2.setViewportSize(desktop);
  instrument(page2);
  const seen2 = watch(page2);
  await page2.goto(`${stack.base}/c/${id}`);
  await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 to load the conversation' });

  const { context: other, page: page3, seen: seen3 } = await anotherBrowser(stack, stack.base, creds, desktop);
  for (const p of [page, page2, page3]) await connected(p);
  return { creds, id, context, other, pages: [page, page2, page3], seen: [seen, seen2, seen3] };
}
