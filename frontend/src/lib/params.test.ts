import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { checkParams, escapeStop, paramsForm, refusalByRow, sameParams, serverRefusal, unescapeStop, type ParamsForm } from './params';
import type { ModelInfo } from './protocol';

const model: ModelInfo = { id: 'm', name: 'M', demo: false, default: true, maxOutputTokens: 4096, defaults: { temperature: 0.7 } };
const form = (f: Partial<ParamsForm>): ParamsForm => ({ temperature: '', topP: '', maxTokens: '', stop: [], ...f });

describe('checkParams', () => {
  const ok: Array<[string, Partial<ParamsForm>, object]> = [
    ['all empty sets nothing', {}, {}],
    ['the bounds themselves', { temperature: '0', topP: '1', maxTokens: '4096' }, { temperature: 0, topP: 1, maxTokens: 4096 }],
    ['decimals with spaces around', { temperature: ' 1.25 ', topP: '.9' }, { temperature: 1.25, topP: 0.9 }],
    ['stop sequences with escapes, empty lines dropped', { stop: ['\\n\\nUser:', '', 'END'] }, { stop: ['\n\nUser:', 'END'] }],
    ['64 characters, counted as characters not UTF-16 units', { stop: ['🙂'.repeat(64)] }, { stop: ['🙂'.repeat(64)] }],
  ];
  for (const [name, f, params] of ok) {
    it(`accepts ${name}`, () => {
      expect(checkParams(form(f), model)).toEqual({ ok: true, params });
    });
  }

  const refused: Array<[string, Partial<ParamsForm>, RegExp, keyof ParamsForm]> = [
    ['a temperature above 2', { temperature: '2.5' }, /^Temperature must be a number from 0 to 2\.$/, 'temperature'],
    ['a negative temperature', { temperature: '-0.1' }, /from 0 to 2/, 'temperature'],
    ['a temperature that is not a number', { temperature: 'warm' }, /must be a number/, 'temperature'],
    ['a top-p of 0', { topP: '0' }, /^Top-p must be a number above 0 and at most 1\.$/, 'topP'],
    ['a top-p above 1', { topP: '1.01' }, /above 0 and at most 1/, 'topP'],
    ['max tokens of 0', { maxTokens: '0' }, /^Max answer tokens must be a whole number from 1 to 4,096 for this model\.$/, 'maxTokens'],
    ['max tokens above the model\'s bound', { maxTokens: '4097' }, /from 1 to 4,096 for this model/, 'maxTokens'],
    ['fractional max tokens', { maxTokens: '10.5' }, /whole number/, 'maxTokens'],
    ['a stop sequence of 65 characters', { stop: ['ok', 'x'.repeat(65)] }, /^Stop sequence 2 is 65 characters long; at most 64\.$/, 'stop'],
    ['five stop sequences', { stop: ['a', 'b', 'c', 'd', 'e'] }, /^At most 4 stop sequences\.$/, 'stop'],
    ['a long stop sequence after an empty row, named by its row', { stop: ['', 'x'.repeat(70)] }, /^Stop sequence 2 is 70 characters long; at most 64\.$/, 'stop'],
    ['a long stop sequence between empty rows', { stop: ['', 'ok', '', 'x'.repeat(65)] }, /^Stop sequence 4 is 65 characters long/, 'stop'],
  ];
  for (const [name, f, text, field] of refused) {
    it(`refuses ${name}`, () => {
      const r = checkParams(form(f), model);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.errors[field as keyof typeof r.errors]).toMatch(text);
    });
  }

  it('bounds max tokens by 1,048,576 for a model without maxOutputTokens (or an unknown model)', () => {
    expect(checkParams(form({ maxTokens: '1048576' }), undefined)).toEqual({ ok: true, params: { maxTokens: 1048576 } });
    const r = checkParams(form({ maxTokens: '1048577' }), { ...model, maxOutputTokens: undefined });
    expect(r.ok || r.errors.maxTokens).toBe('Max answer tokens must be a whole number from 1 to 1,048,576.');
  });

  it('reports every bad field at once', () => {
    const r = checkParams(form({ temperature: '3', topP: '2', maxTokens: 'x' }), model);
    expect(r.ok ? [] : Object.keys(r.errors).sort()).toEqual(['maxTokens', 'temperature', 'topP']);
  });
});

describe('stop sequence escapes', () => {
  it('round-trip line breaks, tabs and backslashes through one line of text', () => {
    for (const s of ['\n\nUser:', 'a\tb', 'C:\\path\\n', '\\', 'plain']) {
      expect(escapeStop(s)).not.toMatch(/[\n\t]/);
      expect(unescapeStop(escapeStop(s))).toBe(s);
    }
    expect(escapeStop('\n\nUser:')).toBe('\\n\\nUser:');
    expect(unescapeStop('a\\qb')).toBe('a\\qb'); // unknown escapes stay as typed
  });

  it('paramsForm shows stored parameters as the dialog edits them', () => {
    expect(paramsForm({ temperature: 0.2, maxTokens: 800, stop: ['\n\nUser:'] })).toEqual({ temperature: '0.2', topP: '', maxTokens: '800', stop: ['\\n\\nUser:'] });
    expect(paramsForm(undefined)).toEqual(form({}));
  });
});

describe('sameParams', () => {
  it('treats absent and empty alike and compares every field', () => {
    expect(sameParams(undefined, {})).toBe(true);
    expect(sameParams({ stop: [] }, undefined)).toBe(true);
    expect(sameParams({ temperature: 0.2, stop: ['a'] }, { temperature: 0.2, stop: ['a'] })).toBe(true);
    expect(sameParams({ temperature: 0.2 }, { temperature: 0.3 })).toBe(false);
    expect(sameParams({ stop: ['a'] }, { stop: ['a', 'b'] })).toBe(false);
    expect(sameParams({ maxTokens: 5 }, {})).toBe(false);
  });
});

describe('serverRefusal', () => {
  it('puts the server\'s invalid_field on the field it names, in plain words', () => {
    expect(serverRefusal(new ApiError(400, 'invalid_field', 'params.temperature: must be from 0 to 2 (got 2.5)'))).toEqual({
      field: 'temperature',
      text: 'Temperature must be from 0 to 2 (got 2.5).',
    });
    expect(serverRefusal(new ApiError(400, 'invalid_field', 'params.maxTokens: must be at most 4096 for this model (got 999999)'))).toEqual({
      field: 'maxTokens',
      text: 'Max answer tokens must be at most 4096 for this model (got 999999).',
    });
    expect(serverRefusal(new ApiError(400, 'invalid_field', 'params.stop: sequence 2 must be 1 to 64 characters of valid UTF-8'))).toEqual({
      field: 'stop',
      text: 'Stop sequence 2 must be 1 to 64 characters of valid UTF-8.',
    });
    expect(serverRefusal(new ApiError(400, 'invalid_field', 'params.stop: at most 4 sequences (got 5)')).text).toBe('Stop sequences: at most 4 sequences (got 5).');
  });

  it('names a refused stop sequence by its row as shown, empty rows counted', () => {
    const refused = serverRefusal(new ApiError(400, 'invalid_field', 'params.stop: sequence 2 must not contain NUL (U+0000)'));
    expect(refusalByRow(refused, ['', 'a', '', 'b'])).toEqual({ field: 'stop', text: 'Stop sequence 4 must not contain NUL (U+0000).' });
    expect(refusalByRow(refused, ['a', 'b'])).toEqual(refused);
    expect(refusalByRow(refused, ['a'])).toEqual(refused); // no such row: as the server said
    const other = serverRefusal(new ApiError(400, 'invalid_field', 'params.stop: at most 4 sequences (got 5)'));
    expect(refusalByRow(other, ['', 'a'])).toEqual(other);
    const temperature = serverRefusal(new ApiError(400, 'invalid_field', 'params.temperature: must be from 0 to 2 (got 2.5)'));
    expect(refusalByRow(temperature, ['', 'a'])).toEqual(temperature);
  });

  it('keeps any other error\'s text, naming the server when it refused', () => {
    expect(serverRefusal(new ApiError(400, 'invalid_field', 'systemPrompt: must be at most 8000 characters (got 9000)'))).toEqual({
      text: 'The server refused the settings: systemPrompt: must be at most 8000 characters (got 9000)',
    });
    expect(serverRefusal(new ApiError(0, 'network', 'The server cannot be reached. Check your connection.'))).toEqual({
      text: 'The server cannot be reached. Check your connection.',
    });
    // A rate limit refuses no setting: the save waits.
    expect(serverRefusal(new ApiError(429, 'rate_limited', 'too many changes to conversations; try again in a moment', 45))).toEqual({
      text: 'The settings are not saved yet: Too many changes to conversations; try again in 45 seconds.',
    });
    expect(serverRefusal(new ApiError(429, 'rate_limited', 'too many requests'))).toEqual({ text: 'The settings are not saved yet: Too many requests.' });
    // A proxy's bare status was "The server refused the settings: HTTP 502".
    expect(serverRefusal(new ApiError(502, 'http_502', 'HTTP 502'))).toEqual({ text: 'The server cannot be reached or is restarting; try again in a moment.' });
  });
});
