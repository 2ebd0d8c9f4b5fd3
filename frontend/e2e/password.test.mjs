// Browser tests of changing one's password (PATCH /api/auth/me) from the
// Account dialog, with a second tab of the same browser and a second
// browser signed in to the account. A new password that breaks
// registration's rules is refused before anything is sent; a wrong current
// password is refused in place and changes nothing; the right one keeps this
// browser signed in. The server closes every socket opened with an older
// token (4401 "signed out") before it answers: the test holds the answer
// until both tabs' sockets are closed, the order that would sign a tab out
// if the client did not wait. Both tabs then go on with the new token,
// resuming the answer that was streaming; the other browser lands on
// sign-in; the old password and token are refused. Same stack as
// chat.test.mjs; screenshots go to test-results/e2e/5x-*.png.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useStack, waitFor } from './harness.mjs';
import { connected, lastAnswer, login, phone, send, shot, shown, statusLine, threeSessions, waitDone, waitStreaming } from './helpers.mjs';

const stack = useStack();

const NEW_PASSWORD = 'a new and longer passphrase';

/** sockets records the WebSockets a page opens (call it before the page loads the app). */
function sockets(page) {
  const all = [];
  page.on('websocket', (ws) => all.push(ws));
  return all;
}

/** closed waits until every socket of the list that is open now has closed. */
function closed(list) {
  return Promise.all(list.filter((ws) => !ws.isClosed()).map((ws) => ws.waitForEvent('close')));
}

/** status answers GET path with token as the browser would send it. */
function status(page, path, token) {
  return page.evaluate(
    async ({ path, token }) => (await fetch(path, { headers: { Authorization: `Bearer ${token}` } })).status,
    { path, token },
  );
}

/** token is the token the browser of page keeps. */
function token(page) {
  return page.evaluate(() => localStorage.getItem('chatd.token'));
}

/** focused says whether the locator's element has the focus. */
function focused(locator) {
  return locator.evaluate((el) => el === document.activeElement);
}

describe('changing the password', () => {
  test('a wrong current password is refused in place; the right one keeps this browser signed in and signs out the others', async () => {
    const socketsOf = new Map();
    const patches = [];
    const { creds, id, context, other, pages, seen: watched } = await threeSessions(stack, 'password', (p) => {
      socketsOf.set(p, sockets(p));
      p.on('request', (r) => r.method() === 'PATCH' && r.url().endsWith('/api/auth/me') && patches.push(r));
    });
    const [page, page2, page3] = pages;
    const [seen, seen2, seen3] = watched;
    const [sockets1, sockets2] = [socketsOf.get(page), socketsOf.get(page2)];
    const oldToken = await token(page);

    // The dialog, by keyboard: focus starts on Close, Tab wraps to the current password.
    await page.getByRole('button', { name: 'Open conversations' }).click();
    await page.getByRole('button', { name: 'Account', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Account' });
    await dialog.waitFor();
    const section = dialog.getByRole('region', { name: 'Change password' });
    const current = section.getByLabel('Current password');
    const next = section.getByLabel('New password');
    const button = section.getByRole('button', { name: 'Change password' });
    assert.equal(await focused(dialog.getByRole('button', { name: 'Close' })), true);
    await page.keyboard.press('Tab');
    assert.equal(await focused(current), true, 'Tab moves to the current password');
    assert.match(await next.getAttribute('aria-describedby'), /\S/, 'the new password has its rules described');
    const box = await dialog.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= phone.width, `the dialog fits the phone's width: ${JSON.stringify(box)}`);

    // A new password that breaks registration's rules: said under the field, nothing sent.
    await page.keyboard.type('not my password 1');
    await page.keyboard.press('Tab');
    await page.keyboard.type('short');
    await page.keyboard.press('Enter');
    await section.getByRole('alert').filter({ hasText: 'This password is too short: 5 characters. Use at least 8.' }).waitFor();
    assert.equal(await next.getAttribute('aria-invalid'), 'true');
    assert.equal(await focused(next), true, 'the refused field takes the focus');
    assert.equal(patches.length, 0, 'nothing was sent');

    // A wrong current password: the button waits while the server checks, then the refusal shows in place.
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const hold = async (route) => {
      if (route.request().method() === 'PATCH') await held;
      await route.continue();
    };
    await page.route('**/api/auth/me', hold);
    await next.fill(NEW_PASSWORD);
    await next.press('Enter');
    const waiting = section.getByRole('button', { name: 'Changing…' });
    await waiting.waitFor();
    assert.equal(await waiting.isDisabled(), true, 'disabled while the request runs');
    release();
    await section.getByRole('alert').filter({ hasText: 'The current password is wrong.' }).waitFor();
    await page.unroute('**/api/auth/me', hold);
    assert.equal(patches.length, 1);
    assert.equal(await current.getAttribute('aria-invalid'), 'true');
    assert.equal(await focused(current), true, 'the current password takes the focus');
    assert.equal(await button.isEnabled(), true);
    assert.match(new URL(page.url()).pathname, new RegExp(`/c/${id}$`), 'still signed in');
    assert.equal(await token(page), oldToken);
    assert.equal(await status(page, '/api/auth/me', oldToken), 200, 'the token still works');
    assert.equal((await statusLine(page2))?.state, 'connected', 'tab 2 is untouched');
    assert.equal((await statusLine(page3))?.state, 'connected', 'the other browser is untouched');
    await shot(page, '50-change-password-wrong-phone');

    // An answer streams in both tabs while the password changes.
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.keyboard.press('Escape'); // and the drawer
    await send(page, 'a long answer [[fake tokens=400 delay=25ms]]');
    await waitStreaming(page);
    await waitFor(async () => (await lastAnswer(page2))?.status === 'streaming', { what: 'tab 2 to follow the answer' });
    await page.getByRole('button', { name: 'Open conversations' }).click();
    await page.getByRole('button', { name: 'Account', exact: true }).click();
    await dialog.waitFor();

    // The right password. The server closes the sockets of the old token
    // before it answers; the answer is handed to the page only once both
    // tabs' sockets are closed: neither may sign out meanwhile.
    const open1 = sockets1.filter((ws) => !ws.isClosed());
    const open2 = sockets2.filter((ws) => !ws.isClosed());
    assert.equal(open1.length, 1);
    assert.equal(open2.length, 1);
    let signedInWhileHeld = null;
    const late = async (route) => {
      if (route.request().method() !== 'PATCH') return route.fallback();
      const response = await route.fetch();
      await closed([...open1, ...open2]);
      signedInWhileHeld = [
        new URL(page.url()).pathname,
        new URL(page2.url()).pathname,
        (await lastAnswer(page))?.status,
      ];
      await route.fulfill({ response });
    };
    await page.route('**/api/auth/me', late);
    await current.fill(creds.password);
    await next.fill(NEW_PASSWORD);
    await button.click();
    await section.getByRole('status').filter({ hasText: 'Password changed. Other devices were signed out.' }).waitFor();
    await page.unroute('**/api/auth/me', late);
    assert.deepEqual(signedInWhileHeld, [`/c/${id}`, `/c/${id}`, 'streaming'], 'both tabs waited, signed in, while their sockets were closed');
    assert.equal(await current.inputValue(), '');
    assert.equal(await next.inputValue(), '');
    assert.ok(await dialog.isVisible(), 'the dialog stays open');
    await shot(page, '51-password-changed-phone');

    // This browser goes on with the new token, both tabs, each on a new socket.
    const newToken = await token(page);
    assert.ok(newToken && newToken !== oldToken, 'a new token is kept');
    assert.equal(await token(page2), newToken);
    assert.equal(await page.evaluate(() => localStorage.getItem('chatd.passwordChange')), null, 'the change is over for the other tabs');
    assert.equal(await status(page, '/api/auth/me', oldToken), 401, 'the old token is refused');
    assert.equal(await status(page, '/api/auth/me', newToken), 200);
    await connected(page);
    await connected(page2);
    assert.equal(sockets1.filter((ws) => !ws.isClosed()).length, 1, 'tab 1 opened a new socket');
    assert.equal(sockets2.filter((ws) => !ws.isClosed()).length, 1, 'tab 2 opened a new socket');
    assert.equal(await page.evaluate(() => window.__chatd.transport()), 'ws');
    const expected = await stack.expectedText({ tokens: 400 });
    assert.equal((await waitDone(page)).content, expected, 'the answer resumed in tab 1');
    assert.equal((await waitDone(page2)).content, expected, 'the answer resumed in tab 2');

    // The other browser is signed out.
    await page3.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.match(page3.url(), /\/login$/);
    await page3.getByRole('status').filter({ hasText: 'Your session has ended.' }).waitFor();

    // Both tabs still talk to the server: a message from each, answered.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.keyboard.press('Escape'); // and the drawer
    const short = await stack.expectedText({ tokens: 5 });
    await send(page2, 'from tab 2 [[fake tokens=5 delay=5ms]]');
    await waitFor(async () => (await shown(page2)).length === 6, { what: 'tab 2 to send' });
    assert.equal((await waitDone(page2)).content, short);
    await waitFor(async () => (await shown(page)).length === 6, { what: 'tab 1 to see it' });
    await send(page, 'from tab 1 [[fake tokens=5 delay=5ms]]');
    await waitFor(async () => (await shown(page)).length === 8, { what: 'tab 1 to send' });
    assert.equal((await waitDone(page)).content, short);
    assert.match(new URL(page.url()).pathname, new RegExp(`/c/${id}$`));
    assert.match(new URL(page2.url()).pathname, new RegExp(`/c/${id}$`));

    // The old password no longer signs in; the new one does.
    await login(page3, creds.email, creds.password);
    await page3.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
    await login(page3, creds.email, NEW_PASSWORD);
    await page3.getByLabel('Message', { exact: true }).waitFor();
    await connected(page3);
    assert.deepEqual([...seen.errors, ...seen2.errors, ...seen3.errors], []);
    assert.deepEqual([...seen.dialogs, ...seen2.dialogs, ...seen3.dialogs], []);
    await context.close();
    await other.close();
  });
});
