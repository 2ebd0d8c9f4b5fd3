// Browser tests of what a newcomer meets in the web client (issue 11): the
// sign-in page, registration feedback, a message sent while offline, long
// messages, remote images, token counts, a connection lost mid-answer, and
// the layout at phone and desktop widths. Same stack as chat.test.mjs (real
// chatd, real fake OpenAI server, Debian's Chromium); screenshots go to
// test-results/e2e/2x-*.png.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useStack, waitFor } from './harness.mjs';
import { conversationId, lastAnswer, normalize, register, send, shot, shown, statusLine, uniqueEmail, waitDone, waitStreaming, watch } from './helpers.mjs';

const stack = useStack();

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
    // Reconnecting at first; offline once the server is found out of reach, and offline it stays until connected.
    assert.match(await note.innerText(), /^(Connection lost\. Reconnecting…|Offline: the answer continues on the server)/);
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

describe('offline sign-out', () => {
  test('a sign-out made offline is immediate here and ends the session on the server once the network is back', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('offline-signout'));
    await linkState(page, 'connected');
    const token = await page.evaluate(() => localStorage.getItem('chatd.token'));
    // Another browser asks the server about the token: the page itself is offline.
    const other = await stack.browser.newContext();
    const probe = await other.newPage();
    await probe.goto(stack.base + '/login');
    const statusOf = () =>
      probe.evaluate(async (t) => (await fetch('/api/auth/me', { headers: { Authorization: `Bearer ${t}` } })).status, token);

    await goOffline(context, page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('chatd.token')), null);
    assert.match(await page.evaluate(() => localStorage.getItem('chatd.revoke') ?? ''), /"token"/);
    assert.equal(await statusOf(), 200, 'the server has not heard of it yet');
    await shot(page, '26-signed-out-offline');

    await context.setOffline(false);
    await waitFor(async () => (await statusOf()) === 401, { what: 'the old token refused once the network is back' });
    await waitFor(async () => (await page.evaluate(() => localStorage.getItem('chatd.revoke'))) === null, { what: 'the sign-out forgotten once sent' });
    assert.deepEqual(seen.errors, []);
    await other.close();
    await context.close();
  });
});

describe('a sign-in with a sign-out pending', () => {
  test('another tab does not send the pending sign-out while this tab signs in, which would end the new session', async () => {
    const { context, page, seen } = await newPage();
    const creds = await register(page, stack.base, uniqueEmail('signin-pause'));
    await linkState(page, 'connected');
    const page2 = await context.newPage();
    const seen2 = watch(page2);
    await page2.goto(stack.base + '/');
    await linkState(page2, 'connected');

    // Every logout fails (the network) until the sign-in is on its way; then they reach the server.
    let loginAnswered = null;
    let releaseLogin;
    const held = new Promise((resolve) => (releaseLogin = resolve));
    let logoutsSent = 0;
    await context.route('**/api/auth/logout', (route) => {
      if (!loginAnswered) return route.abort('internetdisconnected');
      logoutsSent++;
      return route.continue();
    });
    await context.route('**/api/auth/login', async (route) => {
      const response = await route.fetch(); // the server has issued the new token ...
      loginAnswered = response;
      await held; // ... and the page does not have it yet
      await route.fulfill({ response });
    });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page2.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.match(await page.evaluate(() => localStorage.getItem('chatd.revoke') ?? ''), /"token"/, 'the sign-out is pending');

    await page.getByLabel('Email').fill(creds.email);
    await page.getByLabel('Password').fill(creds.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitFor(() => loginAnswered !== null, { what: 'the server to answer the sign-in' });
    // Tab 2 retries its pending sign-outs (the network back) while the answer is on its way.
    await page2.evaluate(() => window.dispatchEvent(new Event('online')));
    await page2.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
    releaseLogin();

    await page.getByLabel('Message', { exact: true }).waitFor();
    await linkState(page, 'connected');
    await linkState(page2, 'connected'); // tab 2 followed the new session
    const token = await page.evaluate(() => localStorage.getItem('chatd.token'));
    const status = await page.evaluate(async (t) => (await fetch('/api/auth/me', { headers: { Authorization: `Bearer ${t}` } })).status, token);
    assert.equal(status, 200, 'the new session is alive');
    assert.equal(logoutsSent, 0, 'no sign-out reached the server during the sign-in');
    assert.equal(await page.evaluate(() => localStorage.getItem('chatd.revoke')), null, 'the same user’s pending sign-out dropped');
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });
});

describe('following an answer', () => {
  // The markdown renders from a deferred value, after the message list has
  // scrolled for the render that brought the text. A tab in the background
  // runs its timers late, so the store publishes what streamed meanwhile in
  // one go (at the latest with the answer's done): a reader who was at the
  // bottom must still find the view at the answer's end when they look.
  test('a reader at the bottom sees the end of an answer that arrived while the tab’s timers were held', async () => {
    const { context, page, seen } = await newPage(stack.base, phone);
    await register(page, stack.base, uniqueEmail('follow'));
    await linkState(page, 'connected');
    // A first answer, and the automatic title that follows it (a later render of the list).
    await send(page, 'first [[fake tokens=3]]');
    await waitDone(page);
    await waitFor(async () => (await page.locator('.chat-title').textContent()) !== 'New chat', { what: 'the automatic title' });
    await send(page, 'follow me [[fake tokens=400 delay=10ms]]');
    await waitStreaming(page);
    await page.locator('.msg-assistant[data-status="streaming"] .md').waitFor(); // its markdown is on the page, growing
    // As in a background tab: timers (the store's publication throttle among them) wait.
    await page.clock.install();
    await page.clock.pauseAt(Date.now() + 1000); // install alone lets time flow
    const a = await waitDone(page);
    assert.equal(a.content, await stack.expectedText({ tokens: 400 }));
    await waitFor(async () => normalize(await page.locator('.msg-assistant').last().locator('.msg-body').innerText()) === normalize(a.content), {
      what: 'the whole answer on the page',
    });
    const list = page.locator('.messages');
    const gap = () => list.evaluate((el) => Math.round(el.scrollHeight - el.scrollTop - el.clientHeight));
    assert.ok((await list.evaluate((el) => el.scrollHeight - el.clientHeight)) > 400, 'the answer is taller than the view');
    await waitFor(async () => (await gap()) < 80, { timeout: 5000, what: 'the view to follow to the end of the answer' }).catch(async (err) => {
      await shot(page, '26-follow-answer-end');
      throw new Error(`${err.message}: ${await gap()} px of the answer below the view`);
    });
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

    // The system prompt (8,000 characters at most) is refused too, never cut.
    await page.getByRole('button', { name: 'System prompt' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('System prompt').fill('z'.repeat(8001));
    assert.equal((await dialog.getByLabel('System prompt').inputValue()).length, 8001);
    assert.match(await dialog.locator('.counter').innerText(), /^8,001 \/ 8,000 characters: too long/);
    assert.equal(await dialog.getByRole('button', { name: 'Save' }).isDisabled(), true);
    await shot(page, '28b-system-prompt-too-long');
    await page.keyboard.press('Escape');
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
    const label = page.locator('.msg-assistant .usage [title]').last(); // what is seen; a screen reader reads the whole title beside it
    assert.equal(await label.innerText(), `${usage.completionTokens} tokens`);
    const title = new RegExp(`This answer: ${usage.completionTokens} tokens\\. The prompt .*: ${usage.promptTokens} tokens`);
    assert.match(await label.getAttribute('title'), title);
    assert.match(await page.locator('.msg-assistant .usage .sr-only').last().textContent(), title);
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

describe('long conversations', () => {
  // The server's paging (GET /api/conversations/:id with hasMore, GET
  // .../messages?before=) is answered here by the browser's router over a
  // real conversation, so the client's side runs against the contract.
  test('open on the newest messages; scrolling to the top loads older ones and keeps the view in place', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('paged'));
    const conversation = await page.evaluate(async () => {
      const res = await fetch('/api/conversations', {
        method: 'POST',
        headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ title: 'A long conversation' }),
      });
      return (await res.json()).conversation;
    });
    const total = 300;
    const all = Array.from({ length: total }, (_, i) => {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      return {
        id: `msg${String(i).padStart(4, '0')}`,
        conversationId: conversation.id,
        parentId: i === 0 ? '' : `msg${String(i - 1).padStart(4, '0')}`,
        role: i % 2 === 0 ? 'user' : 'assistant',
        content: `Message number ${i}.\n\nA second paragraph, so each takes some room.`,
        status: 'complete',
        createdAt: at,
        updatedAt: at,
      };
    });
    const older = [];
    await context.route(`**/api/conversations/${conversation.id}`, (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      return route.fulfill({ json: { conversation, messages: all.slice(-200), activeMessageId: all.at(-1).id, hasMore: true } });
    });
    await context.route(`**/api/conversations/${conversation.id}/messages?*`, (route) => {
      const q = new URL(route.request().url()).searchParams;
      older.push(`${q.get('before')}/${q.get('limit')}`);
      const end = all.findIndex((m) => m.id === q.get('before'));
      const start = Math.max(0, end - Number(q.get('limit')));
      return route.fulfill({ json: { messages: all.slice(start, end), hasMore: start > 0 } });
    });

    await page.goto(`${stack.base}/c/${conversation.id}`);
    await waitFor(async () => (await shown(page)).length === 200, { what: 'the newest 200 messages' });
    assert.equal((await shown(page))[0].id, 'msg0100');
    assert.deepEqual(older, [], 'nothing older is asked for while the reader is at the bottom');
    await page.getByRole('button', { name: 'Load earlier messages' }).waitFor();

    const list = page.locator('.messages');
    const anchor = page.locator('[data-message-id="msg0100"]');
    await list.evaluate((el) => el.scrollTo(0, 0));
    await waitFor(async () => (await shown(page)).length === total, { what: 'the older messages' });
    assert.deepEqual(older, ['msg0100/100']);
    assert.equal((await shown(page))[0].id, 'msg0000');
    // The message that was at the top is still on screen: the view did not jump to the oldest one.
    const box = await rect(anchor);
    const view = await rect(list);
    assert.ok(box.top >= view.top - 5 && box.top < view.bottom, `msg0100 stays in view: ${JSON.stringify({ box, view })}`);
    await shot(page, '34-older-messages-loaded');
    await page.getByRole('button', { name: 'Load earlier messages' }).waitFor({ state: 'detached' });
    await list.evaluate((el) => el.scrollTo(0, 0));
    assert.deepEqual(older, ['msg0100/100'], 'no request once everything is loaded');
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

    // A deletion elsewhere: its toast covers neither the composer nor the
    // header's controls (phone width): it stands above the composer.
    await page.setViewportSize(phone);
    await page.evaluate(async (cid) => {
      await fetch(`/api/conversations/${cid}`, { method: 'DELETE', headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
    }, id);
    const toast = page.locator('.toast').filter({ hasText: 'This conversation was deleted.' });
    await toast.waitFor();
    assert.ok(!overlaps(await rect(toast), await rect(page.locator('.composer'))), 'the toast leaves the composer free');
    assert.ok(!overlaps(await rect(toast), await rect(page.locator('.chat-head'))), 'the toast leaves the header (title, model, menu) free');
    assert.ok((await rect(toast)).bottom <= (await rect(page.locator('.composer-wrap'))).top, 'the toast stands above the composer');
    await shot(page, '33-phone-deletion-toast');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('on a touch phone', () => {
  test('Enter adds a line, Send keeps the keyboard up, a double tap on Send does not stop its answer, Back closes the drawer, and every icon button takes a finger', async () => {
    const context = await stack.browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const seen = watch(page);
    await register(page, stack.base, uniqueEmail('touch'));
    assert.equal(await page.evaluate(() => matchMedia('(pointer: coarse)').matches), true, 'the page sees a touch screen');

    // A phone's keyboard has no Shift+Enter: Enter adds the line.
    const box = page.getByLabel('Message', { exact: true });
    assert.equal(await box.getAttribute('placeholder'), 'Send a message');
    await box.tap();
    await box.fill('first line');
    await page.keyboard.press('Enter');
    await page.keyboard.type('second line [[fake tokens=150 delay=20ms]]');
    assert.equal(await box.inputValue(), 'first line\nsecond line [[fake tokens=150 delay=20ms]]');
    assert.equal(conversationId(page), null, 'Enter sent nothing');

    // A double tap on Send: its second tap lands on Stop, just come in its
    // place. Stop takes a tap only once it has been there 500 ms (the
    // Composer's STOP_TAP_GUARD_MS); a loaded machine may deliver the
    // second tap later than that, when it is a deliberate Stop: the page
    // notes when Stop appeared and when the tap came, and the outcome is
    // judged by that gap.
    await page.evaluate(() => {
      const w = window;
      w.__stopShownAt = 0;
      w.__secondTapAt = 0;
      new MutationObserver(() => {
        if (!w.__stopShownAt && document.querySelector('button[aria-label="Stop generating"]')) w.__stopShownAt = Date.now();
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
      document.addEventListener('click', (e) => {
        if (w.__stopShownAt && e.target instanceof Element && e.target.closest('.composer .send')) w.__secondTapAt = Date.now();
      }, true);
    });
    const button = await rect(page.locator('.composer .send'));
    const [x, y] = [button.left + button.width / 2, button.top + button.height / 2];
    await page.touchscreen.tap(x, y);
    await page.getByRole('button', { name: 'Stop generating' }).waitFor();
    await page.touchscreen.tap(x, y);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Message', 'the focus (and the keyboard) stayed in the box');
    const answer = await waitDone(page);
    const gap = await page.evaluate(() => window.__secondTapAt - window.__stopShownAt);
    if (gap < 480) assert.equal(answer.status, 'complete', `the second tap, ${gap} ms after Stop appeared, did not stop the answer`);
    else if (gap >= 500) assert.equal(answer.status, 'cancelled', `the second tap, ${gap} ms after Stop appeared, stopped the answer`);
    else assert.ok(['complete', 'cancelled'].includes(answer.status), answer.status);
    await shot(page, '34-touch-phone-chat');

    // Every icon button, Send and Scroll to the latest are 44 px or more; the header's title keeps the first row.
    const small = await page.evaluate(() =>
      [...document.querySelectorAll('button.icon, .send, .code-copy, .to-bottom')]
        .filter((el) => el.getClientRects().length > 0)
        .map((el) => ({ name: el.getAttribute('aria-label') || el.className, w: el.getBoundingClientRect().width, h: el.getBoundingClientRect().height }))
        .filter((b) => b.w < 44 || b.h < 44),
    );
    assert.deepEqual(small, [], 'buttons under 44 x 44 px');
    const opener = page.getByRole('button', { name: 'Open conversations' });
    assert.ok((await rect(page.locator('.chat-title'))).top < (await rect(opener)).bottom, 'the title is beside the Open conversations button');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'nothing wider than the screen');

    // Back with the drawer open closes it and stays on the conversation.
    const url = page.url();
    await opener.tap();
    await page.locator('.sidebar.open').waitFor();
    await page.goBack();
    await page.locator('.sidebar.open').waitFor({ state: 'detached' });
    assert.equal(page.url(), url);
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});
