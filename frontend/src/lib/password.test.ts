import { describe, expect, it } from 'vitest';
import { emailProblem, fieldProblem, passwordProblem } from './password';

describe('passwordProblem', () => {
  const cases: Array<[string, string, RegExp | null]> = [
    ['empty', '', /at least 8 characters/],
    ['too short', 'abc1234', /too short: 7 characters\. Use at least 8/],
    ['one character', 'a', /1 character\./],
    ['8 characters', 'abcd1234', null],
    ['72 plain bytes', 'a'.repeat(72), null],
    ['73 plain bytes', 'a'.repeat(73), /too long: it takes 73 bytes, and at most 72 fit/],
    ['37 accented letters are 74 bytes', 'é'.repeat(37), /too long: it takes 74 bytes/],
    ['18 emoji are 72 bytes', '🙂'.repeat(18), null],
    ['4 emoji are 4 characters, too short', '🙂'.repeat(4), /too short: 4 characters/],
    ['a NUL character', 'pass\u0000word', /NUL character/],
  ];
  for (const [name, pw, want] of cases) {
    it(name, () => {
      const got = passwordProblem(pw);
      if (want === null) expect(got).toBeNull();
      else expect(got).toMatch(want);
    });
  }
});

describe('emailProblem', () => {
  it('asks for an address and refuses what cannot be one', () => {
    expect(emailProblem('')).toMatch(/Enter your email/);
    expect(emailProblem('nobody')).toMatch(/does not look like an email/);
    expect(emailProblem(' a@b.c ')).toBeNull();
  });

  it.each([
    ['full width, as a Japanese IME types it', 'ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ'],
    ['an ideographic space around it', '\u3000ada@example.com\u3000'],
    ['a small commercial at (U+FE6B)', 'ada\uFE6Bexample.com'],
  ])('takes an address the server takes after NFKC (docs/api.md): %s', (_, email) => {
    expect(emailProblem(email)).toBeNull();
  });

  it('refuses one NFKC does not make an address', () => {
    expect(emailProblem('ａｄａ＿ｅｘａｍｐｌｅ．ｃｏｍ')).toMatch(/does not look like an email/);
  });
});

describe('fieldProblem', () => {
  it('turns the server refusal into plain words, never the raw text', () => {
    expect(fieldProblem('password: must be at most 72 bytes')).toMatch(/^This password is too long/);
    expect(fieldProblem('password: must be at least 8 characters')).toMatch(/^This password is too short/);
    expect(fieldProblem('password: must not contain NUL characters')).toMatch(/NUL character \(U\+0000\)/);
    expect(fieldProblem('newPassword: must be at most 72 bytes')).toMatch(/^This password is too long/);
    expect(fieldProblem('newPassword: must be at least 8 characters')).toMatch(/^This password is too short/);
    expect(fieldProblem('email: invalid')).toMatch(/email address was not accepted/);
    expect(fieldProblem('something else')).toBeNull();
  });

  it("says why a name or email was refused, not always the name's length", () => {
    const cases: Array<[string, RegExp]> = [
      ['name: must not contain control or bidirectional formatting characters', /^This name was not accepted: it contains invisible formatting or control characters; type it again without them\.$/],
      ['name: must be at most 100 characters', /^This name was not accepted: use at most 100 characters\.$/],
      ['name: must be valid UTF-8 text', /^This name was not accepted: part of it is not valid text/],
      ['name: is required', /^This name was not accepted\. Check it and try again\.$/],
      ['email: must not contain control or bidirectional formatting characters', /^This email address was not accepted: it contains invisible formatting or control characters/],
      ['email: must not contain invisible characters', /^This email address was not accepted: it contains invisible formatting or control characters/],
    ];
    for (const [message, want] of cases) expect(fieldProblem(message), message).toMatch(want);
  });
});
