// Browser end-to-end tests: Debian's Chromium (playwright-core) against the
// real chatd server and the real fake OpenAI server. Run with
// `npm run e2e` (after `npm run build`); screenshots go to test-results/e2e/.
// `npm run e2e:nginx` runs the same tests through the repository's nginx.conf
// over HTTPS (see harness.mjs); every test, in every mode, fails on a
// Content-Security-Policy violation.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { useStack, waitFor } from './harness.mjs';
import {
  answerText,
  assertInert,
  conversationId,
  fallbackConnected,
  lastAnswer,
  login,
  normalize,
  register,
  sampleGrowth,
  sampleStreaming,
  send,
  shot,
  shown,
  statusLine,
  uniqueEmail,
  waitAnswerText,
  waitDone,
  waitStreaming,
  watch,
} from './helpers.mjs';

const stack = useStack();

async function newPage(base = stack.base) {
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const seen = watch(page);
  return { context, page, seen, base };
}

describe('accounts', () => {
  test('register, a taken email, a wrong password, sign in', async () => {
    const { context, page, seen } = await newPage();
    const email = uniqueEmail('acct');
    await page.goto(stack.base + '/');
    assert.match(page.url(), /\/login$/);
    await shot(page, '01-sign-in');
    await register(page, stack.base, email, 'good password 1');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();

    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('good password 1');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: 'already exists' }).waitFor();

    await page.getByRole('link', { name: 'Sign in' }).click();
    await login(page, email, 'wrong password');
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
    await shot(page, '02-sign-in-error');
    await page.getByLabel('Password').fill('good password 1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Message', { exact: true }).waitFor();
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('repeated failures are rate limited with a countdown', async () => {
    const { context, page } = await newPage();
    const email = uniqueEmail('limit');
    await register(page, stack.base, email, 'good password 2');
    await page.getByRole('button', { name: 'Sign out' }).click();
    let limited = false;
    for (let i = 0; i < 12 && !limited; i++) {
      await login(page, email, `wrong ${i}`);
      const alert = page.getByRole('alert');
      await alert.waitFor();
      limited = /Too many attempts\. Try again in \d+ (seconds|minutes)/.test(await alert.innerText());
      if (!limited) await page.getByRole('button', { name: 'Sign in' }).waitFor();
    }
    assert.ok(limited, 'the server answered 429 and the page said so');
    // The countdown is shown, while the button's accessible name stays "Sign in".
    const button = page.getByRole('button', { name: 'Sign in', exact: true });
    assert.match(await button.innerText(), /^Wait \d+ (seconds|minutes)$/);
    assert.ok(await button.isDisabled(), 'sign-in waits for Retry-After');
    await shot(page, '02b-rate-limited');
    await context.close();
  });
});

describe('one conversation, start to end', () => {
  let page;
  let context;
  let seen;
  let id;
  const word = `alpha${Date.now()}`;

  before(async () => {
    ({ context, page, seen } = await newPage());
    await register(page, stack.base, uniqueEmail('conv'));
  });
  after(async () => {
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('the answer arrives token by token and matches the model text exactly', async () => {
    await send(page, `${word} first question [[fake tokens=60 delay=40ms]]`);
    const lengths = await sampleGrowth(page);
    assert.ok(lengths.length >= 4, `answer shown in ${lengths.length} steps: ${lengths}`);
    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    const expected = await stack.expectedText({ tokens: 60 });
    assert.equal(a.content, expected);
    await waitAnswerText(page, expected);
    id = conversationId(page);
    assert.ok(id, 'the URL names the conversation');
    await page.locator('.usage').last().waitFor();
    await page.locator(`.conv[data-conversation-id="${id}"] a`).filter({ hasNotText: 'New chat' }).waitFor();
    await shot(page, '03-answer');
  });

  test('system prompt and model are saved on the conversation', async () => {
    await page.getByRole('button', { name: 'System prompt' }).click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'System prompt' }).click();
    await page.getByRole('dialog').getByLabel('System prompt').fill('You answer like a pirate.');
    await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.getByLabel('Model').selectOption('fake-large');
    const conv = await waitFor(async () => {
      const c = await page.evaluate(async (cid) => {
        const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
        return (await res.json()).conversation;
      }, id);
      return c.model === 'fake-large' ? c : null;
    }, { what: 'the model to be saved' });
    assert.equal(conv.systemPrompt, 'You answer like a pirate.');
  });

  test('Stop ends an answer mid-way', async () => {
    await send(page, `${word} second [[fake tokens=400 delay=30ms]]`);
    await waitStreaming(page, 40);
    await page.getByRole('button', { name: 'Stop generating' }).click();
    const a = await waitDone(page);
    assert.equal(a.status, 'cancelled');
    const full = await stack.expectedText({ tokens: 400 });
    assert.ok(a.content.length > 0 && a.content.length < full.length, `stopped at ${a.content.length} of ${full.length}`);
    assert.ok(full.startsWith(a.content), 'the stopped text is a prefix of the answer');
    await page.locator('.msg-status').filter({ hasText: 'Stopped' }).waitFor();
    await shot(page, '04-stopped');
  });

  test('Regenerate makes a second version; the switcher moves between them', async () => {
    const before = await shown(page);
    assert.equal(before.length, 4);
    await page.getByRole('button', { name: 'Regenerate answer' }).first().click();
    await waitFor(async () => (await shown(page)).length === 2, { what: 'the regenerated branch to show' });
    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    assert.equal(a.content, await stack.expectedText({ tokens: 60 }));
    assert.notEqual(a.id, before[1].id);
    const counter = page.locator('.msg-assistant .version-count');
    assert.equal(await counter.innerText(), '2/2');
    await shot(page, '05-regenerated');

    await page.getByRole('button', { name: 'Previous version' }).click();
    await waitFor(async () => (await shown(page)).length === 4, { what: 'version 1 with its follow-ups' });
    assert.deepEqual((await shown(page)).map((m) => m.id), before.map((m) => m.id));
    assert.equal(await page.locator('.msg-assistant .version-count').first().innerText(), '1/2');
    await page.getByRole('button', { name: 'Next version' }).click();
    await waitFor(async () => (await shown(page))[1]?.id === a.id, { what: 'version 2 again' });
  });

  test('editing the first message and resending makes a branch', async () => {
    await page.getByRole('button', { name: 'Edit message' }).first().click();
    const edit = page.getByLabel('Edit your message');
    await edit.fill(`${word} edited question [[fake tokens=30 delay=30ms]]`);
    await edit.press('Enter');
    await waitFor(async () => (await shown(page))[0]?.content.includes('edited question'), { what: 'the edited branch' });
    const a = await waitDone(page);
    assert.equal(a.content, await stack.expectedText({ tokens: 30 }));
    const path = await shown(page);
    assert.equal(path.length, 2);
    assert.equal(await page.locator('.msg-user .version-count').first().innerText(), '2/2');
    await shot(page, '06-edited-branch');

    await page.locator('.msg-user').first().getByRole('button', { name: 'Previous version' }).click();
    await waitFor(async () => (await shown(page))[0]?.content.includes('first question'), { what: 'the original branch' });
    assert.equal((await shown(page)).length, 2, 'the original branch shows its latest version (the regenerated answer)');
    await page.locator('.msg-user').first().getByRole('button', { name: 'Next version' }).click();
    await waitFor(async () => (await shown(page))[0]?.content.includes('edited question'), { what: 'the edited branch again' });
  });

  test('a reload finds the whole conversation, branches included', async () => {
    await page.reload();
    await waitFor(async () => (await shown(page)).length === 2 && (await shown(page))[0].content.includes('edited'), { what: 'the conversation after reload' });
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '', 'sent text is not left as a draft');
    assert.equal(await page.locator('.msg-user .version-count').first().innerText(), '2/2');
    await page.locator('.msg-user').first().getByRole('button', { name: 'Previous version' }).click();
    await waitFor(async () => (await shown(page))[0]?.content.includes('first question'), { what: 'the original branch after reload' });
    await page.locator('.msg-assistant').first().getByRole('button', { name: 'Previous version' }).click();
    await waitFor(async () => (await shown(page)).length === 4, { what: 'the stopped answer after reload' });
    assert.equal((await shown(page))[3].status, 'cancelled');
  });

  test('search finds it in the sidebar', async () => {
    const search = page.getByLabel('Search conversations');
    await search.fill(word);
    await page.locator(`.conv[data-conversation-id="${id}"]`).waitFor();
    await search.fill(`nothing-${Date.now()}`);
    await page.getByText('No conversation matches.').waitFor();
    await search.fill('');
    await page.locator(`.conv[data-conversation-id="${id}"]`).waitFor();
  });

  test('rename inline, persisted', async () => {
    const item = page.locator(`.conv[data-conversation-id="${id}"]`);
    await item.hover();
    await item.getByRole('button', { name: /^Rename/ }).click();
    const input = page.getByLabel('Conversation title');
    await input.fill(`Renamed ${word}`);
    await input.press('Enter');
    await page.locator('.chat-title').filter({ hasText: `Renamed ${word}` }).waitFor();
    await page.reload();
    await page.locator(`.conv[data-conversation-id="${id}"]`).filter({ hasText: `Renamed ${word}` }).waitFor();
  });

  test('export to Markdown downloads the conversation', async () => {
    await page.getByRole('button', { name: 'Export' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('menuitem', { name: 'Export as Markdown' }).click()]);
    const text = await readFile(await download.path(), 'utf8');
    assert.ok(text.includes(word), 'the export holds the messages');
  });

  test('phone width and dark theme', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, '07-phone');
    await page.getByRole('button', { name: 'Open conversations' }).click();
    await page.locator('.sidebar.open').waitFor();
    await page.waitForFunction(() => getComputedStyle(document.querySelector('.sidebar')).transform === 'none');
    await shot(page, '08-phone-sidebar');
    await page.keyboard.press('Escape');
    await page.locator('.sidebar.open').waitFor({ state: 'detached' });
    await page.setViewportSize({ width: 1280, height: 800 });
    const theme = page.getByRole('button', { name: /^Theme:/ });
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await theme.click(); // system -> light
    assert.equal(await background(), 'rgb(255, 255, 255)');
    await theme.click(); // light -> dark
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await background(), 'rgb(23, 24, 27)');
    await shot(page, '09-dark');
    await theme.click(); // back to system: the system's scheme decides
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.equal(await background(), 'rgb(23, 24, 27)');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.equal(await background(), 'rgb(255, 255, 255)');
  });

  test('delete with confirmation', async () => {
    const item = page.locator(`.conv[data-conversation-id="${id}"]`);
    await item.hover();
    await item.getByRole('button', { name: /^Delete/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await item.waitFor({ state: 'detached' });
    await waitFor(() => new URL(page.url()).pathname === '/', { what: 'the new-chat page' });
    const status = await page.evaluate(async (cid) => {
      const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
      return res.status;
    }, id);
    assert.equal(status, 404);
  });
});

describe('live updates', () => {
  test('a second tab sees a generation live and can stop it', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('tabs'));
    await send(page, 'hello [[fake tokens=5 delay=10ms]]');
    await waitDone(page);
    const id = conversationId(page);

    const page2 = await context.newPage();
    const seen2 = watch(page2);
    await page2.goto(`${stack.base}/c/${id}`);
    await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 to load the conversation' });

    await send(page, 'long one [[fake tokens=300 delay=30ms]]');
    const first = await waitStreaming(page2, 10);
    const later = await waitFor(async () => {
      const a = await lastAnswer(page2);
      return a.content.length > first.content.length + 20 ? a : null;
    }, { what: 'tab 2 to see the answer grow' });
    assert.equal(later.id, first.id);
    await shot(page2, '10-second-tab-live');
    await page2.getByRole('button', { name: 'Stop generating' }).click();
    const a1 = await waitDone(page);
    const a2 = await waitDone(page2);
    assert.equal(a1.status, 'cancelled');
    assert.equal(a2.status, 'cancelled');
    assert.equal(a1.content, a2.content);
    assert.ok((await stack.expectedText({ tokens: 300 })).startsWith(a1.content));
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });

  test('a tab whose subscribe is taken after another tab sent shows the question and the answer running', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('latesub'));
    await send(page, 'hello [[fake tokens=5 delay=10ms]]');
    await waitDone(page);
    const id = conversationId(page);

    // Tab 2 loads the conversation, and its subscribes are held on their
    // way until tab 1's next question is stored and answered in part.
    const page2 = await context.newPage();
    const seen2 = watch(page2);
    let release;
    const held = new Promise((r) => (release = r));
    await page2.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage(async (m) => {
        const f = typeof m === 'string' ? JSON.parse(m) : null;
        if (f?.type === 'subscribe') await held;
        server.send(m);
      });
      server.onMessage((m) => ws.send(m));
    });
    await page2.goto(`${stack.base}/c/${id}`);
    await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 to load the conversation' });

    await send(page, 'asked while tab 2 was not following [[fake tokens=200 delay=30ms]]');
    await waitStreaming(page, 10);
    release();
    const live = await waitStreaming(page2, 10);
    const path = await shown(page2);
    assert.equal(path.length, 4);
    assert.match(path[2].content, /asked while tab 2 was not following/);
    assert.equal(live.id, (await lastAnswer(page)).id);
    const a1 = await waitDone(page);
    const a2 = await waitDone(page2);
    assert.equal(a2.status, 'complete');
    assert.equal(a2.content, a1.content);
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });

  test('two tabs on one conversation share the composer’s text, emptied in both once sent, and never shown to another user', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('drafts'));
    await send(page, 'hello [[fake tokens=5 delay=10ms]]');
    await waitDone(page);
    const id = conversationId(page);
    const page2 = await context.newPage();
    const seen2 = watch(page2);
    await page2.goto(`${stack.base}/c/${id}`);
    await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 to load the conversation' });
    const box = page.getByLabel('Message', { exact: true });
    const box2 = page2.getByLabel('Message', { exact: true });
    const shows = (b, text, what) => waitFor(async () => (await b.inputValue()) === text, { what });

    await box.pressSequentially('typed in tab 1');
    await shows(box2, 'typed in tab 1', 'tab 2 to show the text typed in tab 1');
    await box2.press('End');
    await box2.pressSequentially(', then in tab 2');
    await shows(box, 'typed in tab 1, then in tab 2', 'tab 1 to show what tab 2 added');

    await box.press('Enter'); // sent from tab 1
    await waitDone(page);
    await shows(box, '', 'tab 1 emptied');
    await shows(box2, '', 'tab 2 emptied once the server has the text');

    // Unsent text of this user, then another user signs in on the browser.
    await box2.pressSequentially('private to the first user');
    await shows(box, 'private to the first user', 'tab 1 to show it');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page2.getByRole('button', { name: 'Sign in' }).waitFor();
    await register(page, stack.base, uniqueEmail('drafts-other'));
    await box2.waitFor(); // tab 2 follows the new session, on a new chat
    assert.match(page2.url(), /\/$/);
    const kept = await page.evaluate(() => Object.keys(localStorage).filter((k) => (localStorage.getItem(k) ?? '').includes('private to the first user')));
    assert.deepEqual(kept, [], 'the first user’s text is gone from storage');
    assert.deepEqual([await box.inputValue(), await box2.inputValue()], ['', '']);
    await box.pressSequentially('the second user’s own');
    await shows(box2, 'the second user’s own', 'the second user’s tabs to share their text');
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });

  test('a subscribe the server refuses for good says, above the composer, that updates may be missing, until a retry is taken', async () => {
    const { context, page, seen } = await newPage();
    // The next subscribe the page writes is spoiled on its way (a negative
    // lastSeq), so that the real server refuses it (invalid_field).
    let spoil = false;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const f = typeof m === 'string' ? JSON.parse(m) : null;
        if (spoil && f?.type === 'subscribe') {
          spoil = false;
          server.send(JSON.stringify({ ...f, lastSeq: -1 }));
        } else server.send(m);
      });
      server.onMessage((m) => ws.send(m));
    });
    await register(page, stack.base, uniqueEmail('refused'));
    await send(page, 'hello [[fake tokens=5 delay=10ms]]');
    await waitDone(page);
    const id = conversationId(page);
    await page.evaluate(() => window.__chatd.app.navigate('/'));
    spoil = true;
    await page.evaluate((cid) => window.__chatd.app.navigate(`/c/${cid}`), id);

    const notice = page.locator('.live-notice');
    await notice.waitFor();
    assert.match(await notice.textContent(), /Live updates of this conversation stopped \(lastSeq must not be negative\): new messages and answers may be missing here/);
    // Said by a polite live region outside the chat (heard while a phone's drawer makes the chat inert); the notice is none.
    assert.equal(await notice.evaluate((el) => el.closest('[role="status"]') === null), true, 'the notice is no live region');
    assert.match(await page.locator('.live-announcer[role="status"]').textContent(), /Live updates of this conversation stopped \(lastSeq must not be negative\)/);
    assert.equal(await page.locator('.live-announcer').evaluate((el) => el.closest('main, [inert]') === null), true, 'outside the chat');
    assert.equal((await statusLine(page)).state, 'connected', 'the connection itself is fine');
    await shot(page, '10c-live-updates-stopped');
    await notice.getByRole('button', { name: 'Retry' }).click(); // not spoiled: taken
    await notice.waitFor({ state: 'detached' });
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a socket closed without hello because the session cannot be checked (1013) never shows connected', async () => {
    const { context, page, seen } = await newPage();
    // The status line's states, each change recorded as the page makes it.
    await page.addInitScript(() => {
      window.__states = [];
      new MutationObserver(() => {
        const state = document.querySelector('.status-line')?.getAttribute('data-state');
        if (state && window.__states.at(-1) !== state) window.__states.push(state);
      }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
    });
    // The first two sockets get the close the server makes, without hello,
    // when its database cannot confirm the session; the next ones pass
    // untouched.
    let refused = 0;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      if (refused >= 2) return; // forwarded both ways
      refused++;
      server.onMessage(() => {
        // hello, held back: a session not confirmed gets none
        ws.close({ code: 1013, reason: 'cannot check the session right now; reconnect' });
        server.close();
      });
      ws.onMessage(() => undefined);
    });
    await register(page, stack.base, uniqueEmail('uncheckable'));
    await waitFor(async () => (await statusLine(page))?.state === 'connected', { what: 'connected once a socket passes' });
    const states = await page.evaluate(() => window.__states);
    assert.equal(refused, 2);
    assert.deepEqual(states.filter((s) => s === 'connected'), ['connected'], `connected only at the end: ${states.join(' → ')}`);
    assert.equal(states.at(-1), 'connected');
    assert.ok(states.includes('reconnecting'), `the refusals were seen: ${states.join(' → ')}`);
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('two tabs on two instances of a cluster: the second sees a generation live and stops it', async () => {
    // The instances share the store and a NATS bus (docs/scale.md); each tab
    // talks to its own instance only, so everything the second tab sees of
    // the answer came over the bus.
    const [a, b] = await stack.startClusterPair();
    const { context, page, seen } = await newPage(a);
    const creds = await register(page, a, uniqueEmail('cluster'));
    await send(page, 'hello [[fake tokens=5 delay=10ms]]');
    await waitDone(page);
    const id = conversationId(page);

    const page2 = await context.newPage();
    const seen2 = watch(page2);
    await page2.goto(`${b}/login`);
    await login(page2, creds.email, creds.password);
    await page2.getByLabel('Message', { exact: true }).waitFor();
    await page2.goto(`${b}/c/${id}`);
    await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 (instance b) to load the conversation' });

    await send(page, 'long one [[fake tokens=300 delay=30ms]]');
    const first = await waitStreaming(page2, 10);
    const later = await waitFor(async () => {
      const ans = await lastAnswer(page2);
      return ans.content.length > first.content.length + 20 ? ans : null;
    }, { what: 'tab 2 to see the answer running on instance a grow' });
    assert.equal(later.id, first.id);
    await shot(page2, '10b-second-tab-other-instance');
    await page2.getByRole('button', { name: 'Stop generating' }).click();
    const a1 = await waitDone(page);
    const a2 = await waitDone(page2);
    assert.equal(a1.status, 'cancelled');
    assert.equal(a2.status, 'cancelled');
    assert.equal(a1.content, a2.content);
    assert.ok((await stack.expectedText({ tokens: 300 })).startsWith(a1.content));
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });

  test('a cut WebSocket reconnects and the text has no duplicate or missing part', async () => {
    const { context, page, seen } = await newPage();
    let sockets = 0;
    page.on('websocket', () => sockets++);
    await register(page, stack.base, uniqueEmail('cut'));
    await waitFor(async () => (await statusLine(page))?.state === 'connected', { what: 'connected' });
    await send(page, 'resume me [[fake tokens=200 delay=30ms]]');
    await waitStreaming(page, 30);
    await page.evaluate(() => window.__chatd.dropConnection());
    await waitFor(() => sockets >= 2, { what: 'a second WebSocket' });
    const mid = await waitStreaming(page, 250);
    await page.evaluate(() => window.__chatd.dropConnection());
    await waitFor(() => sockets >= 3, { what: 'a third WebSocket' });
    const a = await waitDone(page);
    assert.ok(mid.content.length >= 250);
    const expected = await stack.expectedText({ tokens: 200 });
    assert.equal(a.status, 'complete');
    assert.equal(a.content, expected);
    await waitAnswerText(page, expected);
    assert.equal(await page.evaluate(() => window.__chatd.transport()), 'ws');
    assert.equal((await statusLine(page)).state, 'connected');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('an expired session returns to sign-in and keeps the unsent text', async () => {
    const a = await newPage();
    const creds = await register(a.page, stack.base, uniqueEmail('expire'));
    const b = await newPage();
    await b.page.goto(stack.base + '/login');
    await login(b.page, creds.email, creds.password);
    const box = b.page.getByLabel('Message', { exact: true });
    await box.fill('an unsent draft that must survive');
    await waitFor(async () => (await statusLine(b.page))?.state === 'connected', { what: 'tab B connected' });

    await a.page.getByRole('button', { name: 'Sign out' }).click(); // revokes every token of the user
    await b.page.getByRole('button', { name: 'Sign in' }).waitFor();
    await b.page.locator('#auth-notice').getByText('Your session has ended').waitFor(); // the notice shown (the polite region says it too)
    await shot(b.page, '11-session-ended');
    await login(b.page, creds.email, creds.password);
    await waitFor(async () => (await b.page.getByLabel('Message', { exact: true }).inputValue()) === 'an unsent draft that must survive', {
      what: 'the draft after signing in again',
    });
    assert.deepEqual([...a.seen.errors, ...b.seen.errors], []);
    await a.context.close();
    await b.context.close();
  });
});

describe('rendering and lists', () => {
  test('a markdown answer: highlighted code with a working copy button, a table', async () => {
    const { context, page, seen } = await newPage();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.base });
    await register(page, stack.base, uniqueEmail('md'));
    await send(page, 'show markdown [[fake mode=markdown delay=5ms]]');
    const a = await waitDone(page);
    assert.equal(a.content, await stack.expectedText({ mode: 'markdown' }));
    const block = page.locator('.msg-assistant .code-block').first();
    assert.equal(await block.locator('.code-lang').innerText(), 'go');
    assert.ok((await block.locator('.hljs-keyword').count()) > 0, 'the code is highlighted');
    assert.equal(await page.locator('.msg-assistant table tbody tr').count(), 2);
    await block.getByRole('button', { name: /Copy go code/ }).click();
    await block.getByRole('button', { name: /Copy go code/ }).filter({ hasText: 'Copied' }).waitFor();
    // Said to a screen reader too: the button's name stays "Copy go code".
    await page.getByRole('status').filter({ hasText: 'Code copied.' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.ok(copied.startsWith('package main') && copied.includes('fmt.Println("héllo", i) // a <b>comment</b>'), copied);
    await shot(page, '14-markdown');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a 5,000-token markdown answer streams without freezing the page', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('long'));
    await page.evaluate(() => {
      window.__longtasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longtasks.push(Math.round(e.duration));
      }).observe({ type: 'longtask', buffered: true });
    });
    const started = Date.now();
    await send(page, 'a long one [[fake mode=markdown tokens=5000 delay=1ms]]');
    const a = await waitDone(page, 180000);
    const seconds = (Date.now() - started) / 1000;
    const expected = await stack.expectedText({ mode: 'markdown', tokens: 5000 });
    assert.equal(a.content, expected);
    // The client's state ends before the DOM's throttled render of the last
    // tokens: wait for the page to show every block the text opens.
    const want = Math.ceil((expected.match(/^```/gm) ?? []).length / 2);
    const codeBlocks = page.locator('.msg-assistant .code-block');
    const blocks = await waitFor(async () => ((await codeBlocks.count()) === want ? want : null), {
      what: `${want} code blocks on the page`,
    });
    const longTasks = await page.evaluate(() => window.__longtasks);
    const worst = Math.max(0, ...longTasks);
    console.log(`5,000-token answer: ${a.content.length} chars, ${blocks} code blocks, ${seconds.toFixed(1)} s, long tasks: ${longTasks.length}, worst ${worst} ms`);
    assert.ok(want > 100, `the text opens ${want} code blocks`);
    // Generous: a frozen page shows multi-second tasks; a healthy one stays far below.
    assert.ok(worst < 1500, `the longest main-thread task took ${worst} ms`);
    await shot(page, '17-long-answer');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  // A finished message takes content-visibility once it leaves the last
  // four (app.css). At a send after a short exchange, a long answer whose
  // end is on screen leaves them: with no remembered height (it was never
  // skipped) it was laid out at the 240 px estimate for a frame and
  // Chromium clamped the view to that shorter list (here 3435 -> 295 px).
  // Seen by the list as a step up once the answer had its height again, it
  // stopped following the new answer (a reviewer's page); seen first by a
  // scroll event while the list was still short, as here, the view only
  // flashed up for a frame.
  test('a send after a short exchange below a long answer keeps following the new answer', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('cv'));
    const list = page.locator('.messages');
    const gap = () => list.evaluate((el) => Math.round(el.scrollHeight - el.scrollTop - el.clientHeight));
    const atBottom = async (what) => {
      await waitFor(async () => (await gap()) <= 1, { timeout: 5000, what }).catch(async (err) => {
        await shot(page, '17b-send-after-short-exchange');
        throw new Error(`${err.message}: ${await gap()} px below the view, list class "${await list.getAttribute('class')}"`);
      });
    };
    // Until the sent message is in the path, the last answer is the one before.
    const answer = async (text, messages) => {
      await send(page, text);
      await waitFor(async () => (await shown(page)).length === messages, { what: `${messages} messages` });
      await waitAnswerText(page, (await waitDone(page)).content);
    };
    await answer('a long one [[fake tokens=3000 delay=1ms]]', 2);
    await answer('thanks [[fake tokens=3]]', 4);
    await atBottom('the view at the end of the short answer');
    const a1 = page.locator('.msg-assistant').first();
    const box = await a1.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const v = el.closest('.messages').getBoundingClientRect();
      return { height: r.height, bottomShown: r.bottom > v.top && r.bottom < v.bottom, view: v.height };
    });
    assert.ok(box.height > 3 * box.view, `the long answer (${box.height} px) is over three views (${box.view} px) tall`);
    assert.ok(box.bottomShown, 'the long answer ends on screen');
    // Any moment the view stands far above the bottom, and any moment the
    // list stops following, however short, is recorded. (The view moving
    // up with the bottom, as when the emptied composer shrinks and the list
    // grows taller, is not a drop: it stays at the bottom.) The drop this
    // pins took the view some 3,000 px up, a long answer laid out at its
    // 240 px estimate; a frame of streamed text is a line or two.
    await list.evaluate((el) => {
      window.__away = [];
      window.__up = [];
      new MutationObserver(() => el.classList.contains('away') && window.__away.push(el.scrollTop)).observe(el, { attributes: true, attributeFilter: ['class'] });
      el.addEventListener('scroll', () => {
        const gap = Math.round(el.scrollHeight - el.scrollTop - el.clientHeight);
        if (gap > 200) window.__up.push(`${gap} px above the bottom at ${Math.round(el.scrollTop)}`);
      });
    });
    await answer('again [[fake tokens=300 delay=5ms]]', 6);
    await atBottom('the view to follow to the end of the new answer');
    assert.deepEqual(await page.evaluate(() => window.__up), [], 'the view never dropped from the bottom');
    assert.deepEqual(await page.evaluate(() => window.__away), [], 'the list never stopped following');
    assert.equal(await list.getAttribute('class'), 'messages');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a failed answer shows its status and the error', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('fail'));
    await send(page, 'break [[fake tokens=40 fault=error_mid after=5 delay=20ms]]');
    const a = await waitDone(page);
    assert.equal(a.status, 'error');
    const badge = page.locator('.msg-status.status-error');
    await badge.waitFor();
    // What to do first (the fault is an upstream error), the provider's words under Details.
    assert.match(await badge.innerText(), /^Error: The model provider had a problem\. Regenerate to try again/);
    assert.equal(await badge.locator('details summary').innerText(), 'Details');
    await shot(page, '16-error-status');
    assert.deepEqual(seen.errors, []);

    await page.getByRole('button', { name: 'Export' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('menuitem', { name: 'Export as JSON' }).click()]);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.ok(JSON.stringify(exported).includes('break [[fake'), 'the JSON export holds the messages');
    await context.close();
  });

  test('the sidebar loads more conversations as it scrolls; activity in an older one brings it to the top', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('many'));
    const ids = await page.evaluate(async () => {
      const headers = { Authorization: `Bearer ${localStorage.getItem('chatd.token')}`, 'Content-Type': 'application/json' };
      const out = [];
      for (let i = 0; i < 35; i++) {
        const res = await fetch('/api/conversations', { method: 'POST', headers, body: JSON.stringify({ title: `Topic ${String(i).padStart(2, '0')}` }) });
        out.push((await res.json()).conversation.id);
      }
      return out;
    });
    await page.reload();
    await waitFor(async () => (await page.locator('.conv').count()) === 30, { what: 'the first page' });
    assert.equal(await page.locator('.conv').first().innerText(), 'Topic 34', 'newest first');
    assert.equal(await page.locator(`.conv[data-conversation-id="${ids[0]}"]`).count(), 0, 'Topic 00 is on the second page');

    // A message in Topic 00 from elsewhere (a plain REST send: the answer runs
    // on the server): its conversation frame brings it to the top at once.
    const status = await page.evaluate(async (cid) => {
      const res = await fetch(`/api/conversations/${cid}/messages`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ content: 'back to an old topic [[fake tokens=3 delay=5ms]]' }),
      });
      return res.status;
    }, ids[0]);
    assert.equal(status, 202);
    await waitFor(async () => (await page.locator('.conv').first().getAttribute('data-conversation-id')) === ids[0], {
      timeout: 10000,
      what: 'Topic 00 at the top of the sidebar',
    });
    assert.equal(await page.locator('.conv').count(), 31);

    await page.locator('.conv-list').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await waitFor(async () => (await page.locator('.conv').count()) === 35, { what: 'the second page, without a duplicate' });
    assert.equal(await page.locator('.conv').first().innerText(), 'Topic 00');
    assert.equal(await page.locator('.conv').last().innerText(), 'Topic 01');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('on a touch tablet the sidebar shows each conversation’s Rename and Delete, which no hover reveals', async () => {
    const context = await stack.browser.newContext({ viewport: { width: 1024, height: 768 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const seen = watch(page);
    await register(page, stack.base, uniqueEmail('tablet'));
    await page.evaluate(async () => {
      const headers = { Authorization: `Bearer ${localStorage.getItem('chatd.token')}`, 'Content-Type': 'application/json' };
      await fetch('/api/conversations', { method: 'POST', headers, body: JSON.stringify({ title: 'Tablet topic' }) });
    });
    await page.reload();
    const item = page.locator('.conv').filter({ hasText: 'Tablet topic' });
    await item.waitFor();
    assert.equal(await page.evaluate(() => matchMedia('(hover: none)').matches), true, 'the page sees a touch screen');
    assert.equal(await page.evaluate(() => matchMedia('(max-width: 760px)').matches), false, 'wider than a phone');
    assert.equal(await item.locator('.conv-actions').evaluate((el) => getComputedStyle(el).opacity), '1', 'Rename and Delete are visible');
    await shot(page, '16b-tablet-sidebar');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('on a phone every text field is 16 px or more: iOS zooms into a smaller one when it takes the focus', async () => {
    const context = await stack.browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const seen = watch(page);
    const small = () =>
      page.evaluate(() =>
        [...document.querySelectorAll('input:not([hidden]), textarea, select')]
          .map((el) => ({ field: el.getAttribute('aria-label') || el.getAttribute('name') || el.tagName, size: parseFloat(getComputedStyle(el).fontSize) }))
          .filter((f) => f.size < 16),
      );
    await page.goto(`${stack.base}/register`);
    await page.getByLabel('Email').waitFor();
    assert.equal(await page.evaluate(() => matchMedia('(pointer: coarse)').matches), true, 'the page sees a touch screen');
    assert.deepEqual(await small(), [], 'the registration form');
    await register(page, stack.base, uniqueEmail('phone'));
    assert.deepEqual(await small(), [], 'the chat page');
    await page.getByRole('button', { name: 'System prompt and parameters' }).click();
    await page.getByRole('dialog').waitFor();
    assert.deepEqual(await small(), [], 'the settings dialog');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('on a phone the closed sidebar is out of the keyboard’s way; opened it has the focus, closed it gives it back', async () => {
    const context = await stack.browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const seen = watch(page);
    await register(page, stack.base, uniqueEmail('phone-nav'));
    const sidebar = page.locator('nav.sidebar');
    await waitFor(async () => !(await page.getByRole('button', { name: 'New chat' }).isVisible()), { what: 'the closed sidebar hidden' });
    // Tab through the page from the message box: never into the closed sidebar.
    await page.getByLabel('Message', { exact: true }).focus();
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      assert.equal(await sidebar.evaluate((nav) => nav.contains(document.activeElement)), false, `Tab ${i + 1} went into the closed sidebar`);
    }
    const opener = page.getByRole('button', { name: 'Open conversations' });
    await opener.focus();
    await page.keyboard.press('Enter');
    await page.locator('.sidebar.open').waitFor();
    await waitFor(() => page.evaluate(() => document.activeElement?.classList.contains('new-chat')), { what: 'the focus on New chat' });
    await page.keyboard.press('Escape');
    await page.locator('.sidebar.open').waitFor({ state: 'detached' });
    await waitFor(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'Open conversations'), { what: 'the focus back on the opener' });
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('the offline demo model is labelled as such and answers', async () => {
    const demoBase = await stack.startDemoServer();
    const { context, page, seen } = await newPage(demoBase);
    await register(page, demoBase, uniqueEmail('demo'));
    const picker = page.getByLabel('Model');
    await waitFor(async () => (await picker.locator('option:checked').innerText()) === 'Demo (offline)', { what: 'the demo label' });
    await page.getByRole('note').filter({ hasText: 'no real model is used' }).waitFor();
    // The demo model quotes the prompt: the math comes back rendered by
    // KaTeX, whose inline style attributes must apply under the CSP.
    await send(page, 'hello demo: $e^{i\\pi} + 1 = 0$');
    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    assert.ok(a.content.length > 0);
    const math = await page.evaluate(() => {
      const styled = [...document.querySelectorAll('.msg-assistant .katex [style]')];
      return { katex: document.querySelectorAll('.msg-assistant .katex').length, styled: styled.length, applied: styled.filter((el) => el.style.length > 0).length };
    });
    assert.ok(math.katex > 0 && math.styled > 0 && math.applied === math.styled, `math under the CSP: ${JSON.stringify(math)}`);
    await shot(page, '15-demo-model');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('safety', () => {
  test('an XSS payload from the model does not execute', async () => {
    const { context, page, seen } = await newPage();
    await context.addInitScript(() => {
      window.__xss = undefined;
      window.alert = () => {
        window.__xss = 'alert';
      };
    });
    await register(page, stack.base, uniqueEmail('xss'));
    await send(page, 'show me html [[fake mode=xss delay=5ms]]');
    const a = await waitDone(page);
    assert.equal(a.content, await stack.expectedText({ mode: 'xss' }));
    await page.waitForTimeout(300); // give a payload's onerror/onload a chance to fire
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.deepEqual(seen.dialogs, []);
    await assertInert(page);
    assert.ok((await answerText(page)).includes('<script>'), 'raw HTML is shown as text');
    await shot(page, '12-xss-inert');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

// stack.proxyBase answers WebSocket upgrades with 502. Through nginx
// (E2E_NGINX=1) it is a second nginx whose upstream is that refusing proxy,
// so these tests also run the SSE routes through nginx's streaming locations.
describe('fallback transport', () => {
  test('with WebSocket upgrades refused, chat works over SSE', async () => {
    const { context, page, seen } = await newPage(stack.proxyBase);
    await register(page, stack.proxyBase, uniqueEmail('sse'));
    const status = await fallbackConnected(page);
    assert.match(status.text, /HTTP streaming/);

    await send(page, 'over http [[fake tokens=60 delay=40ms]]');
    const lengths = await sampleGrowth(page);
    assert.ok(lengths.length >= 4, `answer shown in ${lengths.length} steps`);
    const a = await waitDone(page);
    assert.equal(a.content, await stack.expectedText({ tokens: 60 }));
    await shot(page, '13-sse-fallback');

    await send(page, 'cut me [[fake tokens=120 delay=30ms]]');
    await waitStreaming(page, 40);
    await page.evaluate(() => window.__chatd.dropConnection());
    const b = await waitDone(page);
    assert.equal(b.status, 'complete');
    assert.equal(b.content, await stack.expectedText({ tokens: 120 }));

    await send(page, 'stop me [[fake tokens=400 delay=30ms]]');
    await waitStreaming(page, 20);
    await page.getByRole('button', { name: 'Stop generating' }).click();
    assert.equal((await waitDone(page)).status, 'cancelled');
    assert.equal(await page.evaluate(() => window.__chatd.transport()), 'sse');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('with upgrades refused, a second page follows answers, titles, renames, deletes and the logout live', async () => {
    const a = await newPage(stack.proxyBase);
    const creds = await register(a.page, stack.proxyBase, uniqueEmail('sse-tabs'));
    const b = await newPage(stack.proxyBase); // another browser: no shared storage, only the server links them
    await b.page.goto(stack.proxyBase + '/login');
    await login(b.page, creds.email, creds.password);
    await b.page.getByLabel('Message', { exact: true }).waitFor();
    await fallbackConnected(a.page);
    await fallbackConnected(b.page);
    await b.page.evaluate(() => {
      window.__notReloaded = true;
    });

    // A new conversation and its automatic title reach page B's sidebar.
    await send(a.page, 'name me [[fake tokens=6 delay=10ms]]');
    await waitDone(a.page);
    const id = conversationId(a.page);
    const title = await waitFor(async () => {
      const c = await a.page.evaluate(async (cid) => {
        const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
        return (await res.json()).conversation;
      }, id);
      return c.title;
    }, { what: 'the automatic title' });
    const itemB = b.page.locator(`.conv[data-conversation-id="${id}"]`);
    await waitFor(async () => (await itemB.innerText().catch(() => '')) === title, { timeout: 10000, what: `page B's sidebar to show "${title}"` });

    // Page B opens it and sees an answer started by page A stream in, then stops it.
    await itemB.locator('a').click();
    await waitFor(async () => (await shown(b.page)).length === 2, { what: 'page B to load the conversation' });
    await send(a.page, 'long one [[fake tokens=300 delay=30ms]]');
    const lengths = await sampleStreaming(b.page, 5);
    assert.ok(lengths.every((n, i) => i === 0 || n > lengths[i - 1]), `page B's samples grow: ${lengths}`);
    await shot(b.page, '18-sse-second-page-live');
    await b.page.getByRole('button', { name: 'Stop generating' }).click();
    const [endA, endB] = [await waitDone(a.page), await waitDone(b.page)];
    assert.equal(endA.status, 'cancelled');
    assert.equal(endB.status, 'cancelled');
    assert.equal(endA.id, endB.id);
    assert.equal(endA.content, endB.content);
    assert.ok((await stack.expectedText({ tokens: 300 })).startsWith(endA.content), 'no duplicated or missing text');
    assert.ok(endA.content.length < (await stack.expectedText({ tokens: 300 })).length, 'stopped before the end');

    // A rename in page A shows in page B's sidebar and header; a delete removes it there.
    const itemA = a.page.locator(`.conv[data-conversation-id="${id}"]`);
    await itemA.hover();
    await itemA.getByRole('button', { name: /^Rename/ }).click();
    const renamed = `Renamed over SSE ${Date.now()}`;
    await a.page.getByLabel('Conversation title').fill(renamed);
    await a.page.getByLabel('Conversation title').press('Enter');
    await itemB.filter({ hasText: renamed }).waitFor({ timeout: 10000 });
    await b.page.locator('.chat-title').filter({ hasText: renamed }).waitFor({ timeout: 10000 });
    await itemA.hover();
    await itemA.getByRole('button', { name: /^Delete/ }).click();
    await a.page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await itemB.waitFor({ state: 'detached', timeout: 10000 });
    await waitFor(() => new URL(b.page.url()).pathname === '/', { timeout: 10000, what: 'page B to leave the deleted conversation' });
    assert.equal(await b.page.evaluate(() => window.__notReloaded), true, 'page B was never reloaded');

    // Signing out in page A ends page B's event stream; page B returns to sign-in.
    await a.page.getByRole('button', { name: 'Sign out' }).click();
    await b.page.locator('#auth-notice').getByText('Your session has ended').waitFor({ timeout: 15000 });
    assert.equal(await b.page.evaluate(() => window.__chatd.transport()), null);
    assert.deepEqual([...a.seen.errors, ...b.seen.errors], []);
    await a.context.close();
    await b.context.close();
  });
});
