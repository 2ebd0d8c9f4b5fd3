// ApiClient's request shapes and error mapping, against a scripted fetch.

import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError } from './api';

function client(answer: () => Response) {
  const fetchImpl = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => answer());
  const onUnauthorized = vi.fn();
  const api = new ApiClient({ token: () => 'tok', onUnauthorized, fetch: fetchImpl as typeof fetch });
  return { api, fetchImpl, onUnauthorized };
}

function error(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

describe('ApiClient.deleteAccount', () => {
  it('sends DELETE /api/auth/me with the token and the password, and resolves on 204', async () => {
    const { api, fetchImpl } = client(() => new Response(null, { status: 204 }));
    await expect(api.deleteAccount('pass word 1')).resolves.toBe('deleted');
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe('/api/auth/me');
    expect(init).toMatchObject({
      method: 'DELETE',
      headers: { Authorization: 'Bearer tok', 'Content-Type': 'application/json' },
      cache: 'no-store',
    });
    expect(JSON.parse(String(init?.body))).toEqual({ password: 'pass word 1' });
  });

  it("resolves 'deleting' on 202, when the server is still removing the data", async () => {
    const { api } = client(() => new Response(JSON.stringify({ status: 'deleting' }), { status: 202, headers: { 'Content-Type': 'application/json' } }));
    await expect(api.deleteAccount('pass word 1')).resolves.toBe('deleting');
  });

  it('a wrong password (401) is an error for the caller, not the end of the session', async () => {
    const { api, onUnauthorized } = client(() => error(401, 'unauthorized', 'wrong password'));
    const err = await api.deleteAccount('not it').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: 'unauthorized', message: 'wrong password' });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it.each<[string, (api: ApiClient) => Promise<unknown>]>([
    ['deleteAccount', (api) => api.deleteAccount('pass word 1')],
    ['changePassword', (api) => api.changePassword('pass word 1', 'pass word 2')],
  ])('%s: a 401 refusing the token (its challenge says invalid_token) ends the session, with the token sent', async (_, ask) => {
    const { api, onUnauthorized } = client(() =>
      error(401, 'unauthorized', 'invalid, expired or revoked token', { 'WWW-Authenticate': 'Bearer realm="chatd", error="invalid_token", error_description="invalid, expired or revoked token"' }),
    );
    const err = await ask(api).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, tokenRefused: true });
    expect(onUnauthorized).toHaveBeenCalledWith('tok');
  });

  it('a wrong password with its challenge (no error named) does not end the session', async () => {
    const { api, onUnauthorized } = client(() => error(401, 'unauthorized', 'wrong password', { 'WWW-Authenticate': 'Bearer realm="chatd"' }));
    expect(await api.changePassword('not it', 'pass word 2').catch((e: unknown) => e)).toMatchObject({ status: 401, tokenRefused: false });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it.each([
    [400, 'invalid_field', 'password: must be at most 72 bytes', {}, undefined],
    [429, 'rate_limited', 'too many failed attempts', { 'Retry-After': '42' }, 42],
    [503, 'unavailable', 'the server is busy; retry in a moment', {}, undefined],
  ])('keeps the status, code, message and Retry-After of a %i', async (status, code, message, headers, retryAfter) => {
    const { api, onUnauthorized } = client(() => error(status, code, message, headers));
    const err = await api.deleteAccount('pass word 1').catch((e: unknown) => e);
    expect(err).toMatchObject({ status, code, message, retryAfter });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('a network failure is status 0', async () => {
    const fetchImpl = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const api = new ApiClient({ token: () => 'tok', onUnauthorized: vi.fn(), fetch: fetchImpl as unknown as typeof fetch });
    await expect(api.deleteAccount('pass word 1')).rejects.toMatchObject({ status: 0, code: 'network' });
  });
});

describe('ApiClient.changePassword', () => {
  const session = { token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } };

  it('sends PATCH /api/auth/me with the token and both passwords, and returns the new session', async () => {
    const { api, fetchImpl } = client(() => new Response(JSON.stringify(session), { status: 200, headers: { 'Content-Type': 'application/json' } }));
    await expect(api.changePassword('old pass 1', 'new pass 12')).resolves.toEqual(session);
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe('/api/auth/me');
    expect(init).toMatchObject({ method: 'PATCH', headers: { Authorization: 'Bearer tok', 'Content-Type': 'application/json' }, cache: 'no-store' });
    expect(JSON.parse(String(init?.body))).toEqual({ currentPassword: 'old pass 1', newPassword: 'new pass 12' });
  });

  it.each([
    [401, 'unauthorized', 'wrong password', {}, undefined],
    [400, 'invalid_field', 'newPassword: must be at least 8 characters', {}, undefined],
    [429, 'rate_limited', 'too many failed attempts', { 'Retry-After': '42' }, 42],
    [503, 'unavailable', 'the server is busy; retry in a moment', {}, undefined],
  ])('a %i is an error for the caller, not the end of the session', async (status, code, message, headers, retryAfter) => {
    const { api, onUnauthorized } = client(() => error(status, code, message, headers));
    const err = await api.changePassword('old pass 1', 'new pass 12').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status, code, message, retryAfter });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });
});

describe('ApiClient onUnauthorized', () => {
  it('is told the token the refused request carried (it may have been replaced since)', async () => {
    const { api, onUnauthorized } = client(() => error(401, 'unauthorized', 'token revoked'));
    await api.me().catch(() => undefined);
    expect(onUnauthorized).toHaveBeenCalledWith('tok');
  });
});
