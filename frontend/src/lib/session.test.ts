// Session against a scripted server: who is signed in when the server's
// answers come late.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { User } from './protocol';
import { json, setup } from './testkit';

afterEach(() => history.replaceState(null, '', '/'));

const userA: User = { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' };
const userB: User = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };

describe('Session.refreshUser', () => {
  it.each([
    [
      'here',
      async (app: ReturnType<typeof setup>['app']) => {
        await app.logout();
        await app.login('b@b.c', 'password of B');
      },
    ],
    [
      'in another tab',
      async (_app: ReturnType<typeof setup>['app'], kv: ReturnType<typeof setup>['kv']) => {
        kv.setItem('chatd.token', 'tok-b');
        kv.setItem('chatd.user', JSON.stringify(userB));
        window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: 'tok-b' }));
      },
    ],
  ])('a late answer about A, once B signed in %s, leaves B signed in', async (_, signInB) => {
    let releaseA: (r: Response) => void = () => {};
    const heldA = new Promise<Response>((resolve) => (releaseA = resolve));
    const { app, kv, calls } = setup({
      path: '/',
      route: (url, init) => {
        const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
        if (url === '/api/auth/me' && (init?.method ?? 'GET') === 'GET') return auth === 'Bearer tok' ? heldA : json({ user: userB });
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        return undefined;
      },
    });
    await vi.waitFor(() => expect(calls.some((c) => c.url === '/api/auth/me' && c.auth === 'Bearer tok')).toBe(true));

    await signInB(app, kv);
    expect(app.store.state.session).toMatchObject({ token: 'tok-b', user: { id: 'v' } });
    const answerA = json({ user: userA });
    const body = answerA.json.bind(answerA);
    const read = new Promise<void>((resolve) => {
      answerA.json = async () => {
        const v: unknown = await body();
        resolve();
        return v;
      };
    });
    releaseA(answerA);
    await read;
    for (let i = 0; i < 10; i++) await Promise.resolve(); // refreshUser's continuation after the body

    expect(app.store.state.session).toMatchObject({ token: 'tok-b', user: { id: 'v' } });
    expect(JSON.parse(kv.getItem('chatd.user') ?? 'null')).toMatchObject({ id: 'v' });
    expect(kv.getItem('chatd.token')).toBe('tok-b');
  });
});
