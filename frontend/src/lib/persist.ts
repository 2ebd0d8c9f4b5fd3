// What survives a reload in localStorage: the token, the theme, and the
// composer's draft per conversation (kept through reconnects and re-logins).

const TOKEN = 'chatd.token';
const USER = 'chatd.user';
const DRAFT = 'chatd.draft.';

/** KV is the part of Storage this app uses (localStorage, or a map in tests). */
export interface KV {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** memoryKV is a KV for environments without localStorage. */
export function memoryKV(): KV {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

/** browserKV returns localStorage, or memory when it is unavailable (private modes). */
export function browserKV(): KV {
  try {
    const probe = '__chatd_probe';
    window.localStorage.setItem(probe, '1');
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    return memoryKV();
  }
}

/** Persist reads and writes this app's keys. */
export class Persist {
  constructor(private readonly kv: KV) {}

  static readonly tokenKey = TOKEN;

  token(): string | null {
    return this.kv.getItem(TOKEN);
  }

  user<T>(): T | null {
    const raw = this.kv.getItem(USER);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return null;
    }
  }

  saveSession(token: string, user: unknown): void {
    this.kv.setItem(TOKEN, token);
    this.kv.setItem(USER, JSON.stringify(user));
  }

  clearSession(): void {
    this.kv.removeItem(TOKEN);
    this.kv.removeItem(USER);
  }

  /** draft returns the saved composer text of a conversation ("new" for a new chat). */
  draft(key: string): string {
    return this.kv.getItem(DRAFT + key) ?? '';
  }

  saveDraft(key: string, text: string): void {
    try {
      if (text) this.kv.setItem(DRAFT + key, text);
      else this.kv.removeItem(DRAFT + key);
    } catch {
      // storage full: the draft lives in memory only
    }
  }

  get(key: string): string | null {
    return this.kv.getItem(key);
  }

  set(key: string, value: string): void {
    this.kv.setItem(key, value);
  }
}

/** newClientId returns a random id for clientMessageId (crypto.randomUUID needs a secure context). */
export function newClientId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID();
    } catch {
      // insecure context
    }
  }
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
