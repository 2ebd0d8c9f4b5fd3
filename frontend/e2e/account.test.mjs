// Browser tests of deleting one's account (DELETE /api/auth/me): a wrong
// password is refused in the dialog, the right one ends every tab of the
// user (this one with a notice; another tab of the browser through the
// server's 4401 "account deleted", held until the shared storage says the
// deletion's answer; another browser through the 4401 alone, and a
// browser on the SSE fallback through the stream's closed event, which
// cannot know whether the deletion went through: signed out, their
// unsent texts kept) and leaves nothing of the account in the browser
// that asked or on the server. Same stack as chat.test.mjs;
// screenshots go to test-results/e2e/4x-*.png.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useStack, waitFor } from './harness.mjs';
import { anotherBrowser, fallbackConnected, login, phone, shot, statusLine, threeSessions } from './helpers.mjs';

const stack = useStack();

/** stored returns this app's localStorage keys that hold the account's data. */
function stored(page) {
  return page.evaluate(() => Object.keys(localStorage).filter((k) => k === 'chatd.token' || k === 'chatd.user' || k.startsWith('chatd.draft.')));
}

/** status answers GET path with token as the browser would send it. */
function status(page, path, token) {
  return page.evaluate(
    async ({ path, token }) => (await fetch(path, { headers: { Authorization: `Bearer ${token}` } })).status,
    { path, token },
  );
}

describe('deleting the account', () => {
  test('a wrong password is refused in place; the right one signs out every tab and the account is gone', async () => {
    const { creds, id, context, other, pages, seen: watched } = await threeSessions(stack, 'delete');
    const [page, page2, page3] = pages;
    const [seen, seen2, seen3] = watched;
    const token = await page.evaluate(() => localStorage.getItem('chatd.token'));
    await page2.getByLabel('Message', { exact: true }).fill('a draft of the account');
    await waitFor(async () => (await stored(page2)).includes(`chatd.draft.${id}`), { what: 'the draft to be saved' });
    // The other browser (no shared storage): only the server can tell it.
    await page3.getByLabel('Message', { exact: true }).fill('a draft on another device');
    await waitFor(async () => (await stored(page3)).includes('chatd.draft.new'), { what: 'the other browser\'s draft to be saved' });
    // A third browser, whose WebSocket upgrades are refused: on the SSE
    // fallback, only the event stream's last event can tell it.
    const { context: sse, page: page4, seen: seen4 } = await anotherBrowser(stack, stack.proxyBase, creds, phone);
    await fallbackConnected(page4);
    await page4.getByLabel('Message', { exact: true }).fill('a draft over http');
    await waitFor(async () => (await stored(page4)).includes('chatd.draft.new'), { what: 'the SSE browser\'s draft to be saved' });

    // The dialog, by keyboard: focus starts on Close; the section is the
    // last one, so Shift+Tab reaches its button, then its password (Tab
    // wraps to the first field of the dialog, the password change's).
    await page.getByRole('button', { name: 'Open conversations' }).click();
    await page.getByRole('button', { name: 'Account', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Account' });
    await dialog.waitFor();
    const section = dialog.getByRole('region', { name: 'Delete account' });
    assert.match(await section.innerText(), /every conversation in it.*cannot be undone/s);
    const password = section.getByLabel('Your password, to confirm');
    const button = section.getByRole('button', { name: 'Delete account' });
    const focused = (locator) => locator.evaluate((el) => el === document.activeElement);
    assert.equal(await focused(dialog.getByRole('button', { name: 'Close' })), true);
    await page.keyboard.press('Tab');
    assert.equal(await focused(dialog.getByLabel('Current password')), true, 'Tab wraps to the first field');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(button), true, 'Shift+Tab wraps back past Close to the delete button');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(password), true, 'then to the password');
    const box = await dialog.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= phone.width, `the dialog fits the phone's width: ${JSON.stringify(box)}`);

    // A wrong password: the button waits while the server checks, then the refusal shows in place.
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const hold = async (route) => {
      if (route.request().method() === 'DELETE') await held;
      await route.continue();
    };
    await page.route('**/api/auth/me', hold);
    await page.keyboard.type('not my password 1');
    await page.keyboard.press('Enter');
    const waiting = section.getByRole('button', { name: 'Deleting…' });
    await waiting.waitFor();
    assert.equal(await waiting.isDisabled(), true, 'disabled while the request runs');
    release();
    await section.getByRole('alert').filter({ hasText: 'Wrong password.' }).waitFor();
    await page.unroute('**/api/auth/me', hold);
    assert.equal(await password.getAttribute('aria-invalid'), 'true');
    assert.equal(await button.isEnabled(), true);
    assert.ok(await dialog.isVisible(), 'the dialog stays open');
    assert.match(new URL(page.url()).pathname, new RegExp(`/c/${id}$`), 'still signed in');
    assert.equal(await status(page, '/api/auth/me', token), 200, 'the token still works');
    assert.equal((await statusLine(page2))?.state, 'connected', 'tab 2 is untouched');
    await shot(page, '40-delete-account-wrong-password-phone');

    // The right password, by keyboard: this tab shows sign-in with the notice, tab 2 is signed out.
    await password.fill(creds.password);
    await password.press('Enter');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Your account and all its conversations were deleted.' }).waitFor();
    assert.match(page.url(), /\/login$/);
    await shot(page, '41-account-deleted-sign-in-phone');
    await page2.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.match(page2.url(), /\/login$/);
    await page2.getByRole('status').filter({ hasText: 'Your account and all its conversations were deleted.' }).waitFor();
    assert.equal(await page2.evaluate(() => window.__chatd.transport()), null, 'tab 2 closed its live channel');
    await shot(page2, '42-account-deleted-second-tab');
    // The other browsers heard only the close, sent before the account is
    // removed (which may still fail): signed out, not told it was deleted.
    await page3.getByRole('status').filter({ hasText: 'this account is being deleted, from another tab or device' }).waitFor();
    assert.match(page3.url(), /\/login$/);
    assert.deepEqual(await stored(page3), ['chatd.draft.new'], 'the other browser signed out, its unsent text kept');
    await page4.getByRole('status').filter({ hasText: 'this account is being deleted, from another tab or device' }).waitFor();
    assert.match(page4.url(), /\/login$/);
    assert.deepEqual(await stored(page4), ['chatd.draft.new'], 'the browser on the SSE fallback signed out, its unsent text kept');

    // Nothing of the account is left: not in the browser, not on the server.
    assert.deepEqual(await stored(page), []);
    assert.equal(await status(page, '/api/auth/me', token), 401, 'the old token is refused');
    assert.equal(await status(page, `/api/conversations/${id}`, token), 401);
    await login(page, creds.email, creds.password);
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
    assert.match(page.url(), /\/login$/);
    assert.deepEqual([...seen.errors, ...seen2.errors, ...seen3.errors, ...seen4.errors], []);
    assert.deepEqual([...seen.dialogs, ...seen2.dialogs, ...seen3.dialogs, ...seen4.dialogs], []);
    await context.close();
    await other.close();
    await sse.close();
  });
});
