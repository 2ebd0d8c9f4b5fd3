// Browser tests of what a newcomer meets in the web client (issue 11): the
// sign-in page, registration feedback, a message sent while offline, long
// messages, remote images, token counts, a connection lost mid-answer, and
// the layout at phone and desktop widths. Same stack as chat.test.mjs (real
// chatd, real fake OpenAI server, Debian's Chromium); screenshots go to
// test-results/e2e/2x-*.png.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startStack, waitFor } from './harness.mjs';
import { conversationId, lastAnswer, register, send, shot, shown, statusLine, uniqueEmail, waitDone, waitStreaming, watch } from './helpers.mjs';

let stack;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.stop();
});

afterEach(() => {
  assert.deepEqual(stack?.takeViolations() ?? [], [], 'no Content-Security-Policy violation');
});

const desktop = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };

async function newPage(base = stack.base, viewport = desktop) {
  const context = await stack.browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const seen = watch(page);
  return { context, page, seen, base };
}

/** linkState waits until the status line shows state (or one of states). */
function linkState(page, ...states) {
  return waitFor(
    async () => {
      const s = await statusLine(page);
      return s && states.includes(s.state) ? s : null;
    },
    { what: `the status line to show ${states.join(' or ')}` },
  );
}

/**
 * goOffline cuts the live connection and the network, as a lost Wi-Fi would.
 * The socket is closed first: offline, its closing handshake could not end
 * and the page would learn of the loss only from its ping timeout. The
 * reconnect waits at least 125 ms (backoff), by then the network is gone.
 */
async function goOffline(context, page) {
  await page.evaluate(() => window.__chatd.dropConnection());
  await context.setOffline(true);
  await linkState(page, 'reconnecting', 'offline');
}

/** rect returns an element's bounding box in the page. */
function rect(locator) {
  return locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height };
  });
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

describe('sign-in and registration', () => {
  test('the sign-in page says what this is', async () => {
    const { context, page } = await newPage();
    await page.goto(stack.base + '/login');
    const about = page.locator('.about');
    assert.match(await about.innerText(), /^chatd is a self-hosted chat with language models/);
    assert.ok(await about.isVisible());
    await shot(page, '20-sign-in-about');
    await page.setViewportSize(phone);
    assert.ok(await about.isVisible());
    await shot(page, '20b-sign-in-about-phone');
    await context.close();
  });

  test('too short and too long passwords are explained in the page, with the limits in the hint', async () => {
    const { context, page, seen } = await newPage();
    await page.goto(stack.base + '/register');
    const hint = page.locator('#password-hint');
    assert.match(await hint.innerText(), /At least 8 characters and at most 72 bytes/);
    await page.getByLabel('Email').fill(uniqueEmail('pw'));
    const password = page.getByLabel('Password');
    const createButton = page.getByRole('button', { name: 'Create account' });

    await password.fill('short');
    await createButton.click();
    const error = page.locator('#password-error');
    assert.equal(await error.innerText(), 'This password is too short: 5 characters. Use at least 8.');
    assert.equal(await password.getAttribute('aria-invalid'), 'true');
    assert.match(await password.getAttribute('aria-describedby'), /password-error/);
    // No native validation bubble: the form does not use the browser's checks.
    assert.equal(await page.locator('form').evaluate((f) => f.noValidate), true);
    assert.equal(await password.evaluate((el) => el.validationMessage), '');
    await shot(page, '21-register-too-short');

    await password.fill('é'.repeat(40)); // 40 characters, 80 bytes
    await createButton.click();
    assert.match(await error.innerText(), /^This password is too long: it takes 80 bytes, and at most 72 fit/);
    assert.equal(await page.locator('.form-error').filter({ hasText: 'must be at most' }).count(), 0, 'no raw server text');
    assert.match(new URL(page.url()).pathname, /\/register$/, 'nothing was sent');
    await shot(page, '22-register-too-long');

    await password.fill('a good password');
    await createButton.click();
    await page.getByLabel('Message', { exact: true }).waitFor();
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('offline send', () => {
  for (const [name, viewport] of [
    ['desktop', desktop],
    ['phone', phone],
  ]) {
    test(`a message sent while offline waits, visibly, and is sent on reconnect (${name})`, async () => {
      const { context, page, seen } = await newPage(stack.base, viewport);
      await register(page, stack.base, uniqueEmail(`offline-${name}`));
      await send(page, 'first [[fake tokens=5 delay=5ms]]');
      await waitDone(page);
      await linkState(page, 'connected');

      await goOffline(context, page);
      const text = `written offline ${name} [[fake tokens=8 delay=5ms]]`;
      await send(page, text);
      const note = page.locator('.msg-note.queued');
      await note.waitFor();
      assert.match(await note.innerText(), /Not sent yet: waiting for the connection/);
      assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '', 'not put back into the composer');
      assert.notEqual((await statusLine(page)).state, 'connected');
      assert.equal(await page.getByRole('button', { name: 'Send message' }).isDisabled(), true, 'the next message waits for this one');
      await shot(page, `23-offline-queued-${name}`);

      await context.setOffline(false);
      await linkState(page, 'connected');
      await note.waitFor({ state: 'detached' });
      const a = await waitDone(page);
      assert.equal(a.status, 'complete');
      const path = await shown(page);
      assert.equal(path.length, 4);
      assert.equal(path[2].content, text);
      assert.ok(!path[2].id.startsWith('local:'), 'the server stored it');
      assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '');
      assert.equal(await page.locator('.toast').filter({ hasText: 'not sent' }).count(), 0);
      await shot(page, `24-offline-sent-${name}`);

      // Exactly one copy on the server (the clientMessageId made the retry safe).
      const stored = await page.evaluate(async (cid) => {
        const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
        return (await res.json()).messages.filter((m) => m.role === 'user').map((m) => m.content);
      }, conversationId(page));
      assert.equal(stored.filter((c) => c === text).length, 1);
      assert.deepEqual(seen.errors, []);
      await context.close();
    });
  }

  test('a connection lost mid-answer says so, and the answer completes after reconnecting', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('lost'));
    await linkState(page, 'connected');
    await send(page, 'long [[fake tokens=150 delay=30ms]]');
    await waitStreaming(page, 20);
    await goOffline(context, page);
    const note = page.locator('.msg-assistant .status-waiting');
    await note.waitFor();
    assert.match(await note.innerText(), /^Connection lost\. Reconnecting…/);
    assert.equal(await page.locator('.msg-status').filter({ hasText: 'restarted' }).count(), 0);
    await shot(page, '25-connection-lost-mid-answer');
    await context.setOffline(false);
    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    assert.equal(a.content, await stack.expectedText({ tokens: 150 }));
    await note.waitFor({ state: 'detached' });
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('long messages', () => {
  test('a counter near the limit, a refusal over it, and long messages collapsed', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('longmsg'));
    const box = page.getByLabel('Message', { exact: true });
    const sendButton = page.getByRole('button', { name: 'Send message' });
    const counter = page.locator('.counter');

    const head = '[[fake tokens=3 delay=5ms]] ';
    await box.fill(head + 'x'.repeat(39900 - head.length));
    assert.equal((await box.inputValue()).length, 39900, 'nothing is cut');
    await counter.waitFor();
    assert.match(await counter.innerText(), /^39,900 \/ 32,000 characters: too long to send\. Remove 7,900 characters/);
    assert.equal(await sendButton.isDisabled(), true);
    assert.equal(await sendButton.getAttribute('title'), 'Too long to send');
    await box.press('Enter'); // refused: still there, whole
    assert.equal((await box.inputValue()).length, 39900);
    await shot(page, '26-too-long');

    await box.fill(head + 'y'.repeat(31000 - head.length));
    assert.equal(await counter.innerText(), '31,000 / 32,000 characters');
    assert.equal(await sendButton.isDisabled(), false);
    await shot(page, '27-near-limit');
    await box.press('Enter');
    await waitDone(page);
    const msg = page.locator('.msg-user').first();
    const more = msg.getByRole('button', { name: /^Show more/ });
    await more.waitFor();
    const collapsed = (await rect(msg.locator('.msg-text-body'))).height;
    assert.ok(collapsed < 400, `collapsed to ${collapsed}px`);
    await shot(page, '28-long-message-collapsed');
    await more.click();
    await msg.getByRole('button', { name: 'Show less' }).waitFor();
    assert.ok((await rect(msg.locator('.msg-text-body'))).height > collapsed * 2, 'expanded');
    assert.equal((await shown(page))[0].content.length, 31000, 'stored whole');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('answers', () => {
  test('the token count is the answer’s, the prompt’s on hover', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('tokens'));
    await send(page, 'count me [[fake tokens=12 delay=5ms]]');
    const a = await waitDone(page);
    const usage = await page.evaluate(
      async ({ cid, mid }) => {
        const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
        return (await res.json()).messages.find((m) => m.id === mid).usage;
      },
      { cid: conversationId(page), mid: a.id },
    );
    assert.ok(usage && usage.promptTokens > 0 && usage.completionTokens > 0, JSON.stringify(usage));
    const label = page.locator('.msg-assistant .usage').last();
    assert.equal(await label.innerText(), `${usage.completionTokens} tokens`);
    assert.match(await label.getAttribute('title'), new RegExp(`This answer: ${usage.completionTokens} tokens\\. The prompt .*: ${usage.promptTokens} tokens`));
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a remote image loads only after a click that names its host', async () => {
    const demoBase = await stack.startDemoServer();
    const { context, page, seen } = await newPage(demoBase);
    const imageRequests = [];
    // A one-pixel PNG for the image host, served by the browser's router (no network).
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
    await context.route('https://images.example.net/**', (route) => {
      imageRequests.push(route.request());
      return route.fulfill({ status: 200, contentType: 'image/png', body: png });
    });
    await register(page, demoBase, uniqueEmail('img'));
    await send(page, 'look ![the secret chart](https://images.example.net/log.png?secret=conversation-text)');
    await waitDone(page);
    const placeholder = page.locator('.msg-assistant button.remote-image');
    await placeholder.waitFor();
    assert.match(await placeholder.innerText(), /^Image from images\.example\.net: the secret chart\. Click to load it from that site\.$/);
    assert.equal(await page.locator('.msg-assistant img').count(), 0, 'no <img> before the click');
    assert.equal(imageRequests.length, 0, 'nothing fetched before the click');
    await shot(page, '29-image-placeholder');

    await placeholder.click();
    const img = page.locator('.msg-assistant img.remote-image-loaded');
    await img.waitFor();
    assert.equal(await img.getAttribute('referrerpolicy'), 'no-referrer');
    await waitFor(() => imageRequests.length === 1, { what: 'the image request' });
    assert.equal(imageRequests[0].headers().referer, undefined, 'no Referer sent');
    await waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth === 1), { what: 'the image to load' });
    await shot(page, '30-image-loaded');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('layout', () => {
  test('phone and desktop: model picker, title, demo notice, export menu, toasts, icon buttons', async () => {
    const demoBase = await stack.startDemoServer();
    const { context, page, seen } = await newPage(demoBase, phone);
    await register(page, demoBase, uniqueEmail('layout'));
    await send(page, 'a question whose title will be long enough to need more than one line on a phone');
    await waitDone(page);
    const id = conversationId(page);
    await page.evaluate(
      async ({ cid }) => {
        await fetch(`/api/conversations/${cid}`, {
          method: 'PATCH',
          headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ title: 'Planning the spring garden: vegetables, herbs and flowers' }),
        });
      },
      { cid: id },
    );
    const title = page.locator('.chat-title');
    await title.filter({ hasText: 'Planning the spring garden' }).waitFor();

    // Phone: the picker shows its whole label, the title gets two lines, the demo notice shows.
    const select = page.getByLabel('Model');
    const fits = await select.evaluate((el) => {
      const probe = document.createElement('span');
      probe.style.font = getComputedStyle(el).font;
      probe.textContent = el.selectedOptions[0].textContent;
      document.body.append(probe);
      const need = probe.getBoundingClientRect().width;
      probe.remove();
      const r = el.getBoundingClientRect();
      return { need, have: r.width, right: r.right, viewport: innerWidth };
    });
    assert.ok(fits.have >= fits.need + 16 && fits.right <= fits.viewport, `the model picker fits: ${JSON.stringify(fits)}`);
    const titleBox = await rect(title);
    const lineHeight = await title.evaluate((el) => parseFloat(getComputedStyle(el).lineHeight));
    assert.ok(titleBox.height > lineHeight * 1.5, `the title wraps onto a second line (${titleBox.height}px)`);
    assert.ok(titleBox.width > 300, `the title has the width of the screen (${titleBox.width}px)`);
    const notice = page.getByRole('note').filter({ hasText: 'no real model is used' });
    assert.ok(await notice.isVisible(), 'the demo notice shows on a phone');
    await shot(page, '31-phone-header');

    // Icon-only buttons have a name and a tooltip.
    await page.getByRole('button', { name: 'Open conversations' }).click();
    await page.locator('.sidebar.open').waitFor();
    for (const name of [/^Theme:/, /^Sign out$/]) {
      const b = page.getByRole('button', { name });
      assert.ok(await b.getAttribute('aria-label'));
      assert.ok(await b.getAttribute('title'), `${name} has a tooltip`);
    }
    await page.keyboard.press('Escape');

    // Desktop: the notice is one line and the open Export menu does not cover its text.
    await page.setViewportSize(desktop);
    const noticeBox = await rect(notice);
    assert.ok(noticeBox.height < 26, `one line (${noticeBox.height}px)`);
    await page.getByRole('button', { name: 'Export' }).click();
    const menu = await rect(page.getByRole('menu'));
    const text = await notice.evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const r = range.getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    });
    assert.ok(!overlaps(menu, text), `the menu ${JSON.stringify(menu)} leaves the notice ${JSON.stringify(text)} readable`);
    await shot(page, '32-desktop-demo-notice-export');
    await page.keyboard.press('Escape');

    // A deletion elsewhere: its toast does not cover the composer (phone width).
    await page.setViewportSize(phone);
    await page.evaluate(async (cid) => {
      await fetch(`/api/conversations/${cid}`, { method: 'DELETE', headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
    }, id);
    const toast = page.locator('.toast').filter({ hasText: 'This conversation was deleted.' });
    await toast.waitFor();
    assert.ok(!overlaps(await rect(toast), await rect(page.locator('.composer'))), 'the toast leaves the composer free');
    await shot(page, '33-phone-deletion-toast');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});
