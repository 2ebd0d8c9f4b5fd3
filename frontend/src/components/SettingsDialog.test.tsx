// The settings dialog in the DOM (jsdom): what a save sends when another
// tab changed the conversation's settings while it was open.

import { act } from 'react';
import { describe, expect, it, vi } from 'vitest';
import type { ServerRefusal } from '../lib/params';
import type { Params } from '../lib/protocol';
import { SettingsDialog } from './SettingsDialog';
import { mountEach, watchLive } from './testkit';

const mount = mountEach();

function type(label: string, value: string) {
  const input = [...document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('[role="dialog"] input, [role="dialog"] textarea')].find(
    (i) => i.getAttribute('aria-label') === label || i.labels?.[0]?.textContent === label,
  )!;
  const proto = input instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  act(() => {
    Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

describe('SettingsDialog and another tab', () => {
  it.each([
    ['nothing', () => undefined, 'Theirs', { temperature: 0.5, maxTokens: 100 }],
    ['the temperature', () => type('Temperature', '0.7'), 'Theirs', { temperature: 0.7, maxTokens: 100 }],
    ['the system prompt', () => type('System prompt', 'Mine'), 'Mine', { temperature: 0.5, maxTokens: 100 }],
  ])('with %s changed here, Save keeps what the other tab changed in the fields left alone', async (_name, edit, prompt, params) => {
    const onSave = vi.fn(async () => null);
    const render = (systemPrompt: string, p: Params) =>
      act(() => mount.root.render(<SettingsDialog systemPrompt={systemPrompt} params={p} model={undefined} onSave={onSave} onClose={() => undefined} />));
    render('Mine before', { temperature: 0.5 });
    edit();
    render('Theirs', { temperature: 0.5, maxTokens: 100 }); // saved in another tab meanwhile
    await act(async () => [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!.click());
    expect(onSave).toHaveBeenCalledWith(prompt, params);
  });
});

describe('SettingsDialog while another tab saves the settings', () => {
  const field = (label: string) =>
    [...document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('[role="dialog"] input, [role="dialog"] textarea')].find(
      (i) => i.getAttribute('aria-label') === label || i.labels?.[0]?.textContent === label,
    )!.value;
  const shown = () => ({ prompt: field('System prompt'), temperature: field('Temperature'), topP: field('Top-p'), maxTokens: field('Max answer tokens'), stop: field('Stop sequence 1') });

  it.each([
    ['nothing', () => undefined, { prompt: 'Theirs', temperature: '0.9', topP: '0.5', maxTokens: '100', stop: 'END' }, ['Theirs', { temperature: 0.9, topP: 0.5, maxTokens: 100, stop: ['END'] }]],
    [
      'the system prompt and top-p',
      () => {
        type('System prompt', 'Mine');
        type('Top-p', '0.8');
      },
      { prompt: 'Mine', temperature: '0.9', topP: '0.8', maxTokens: '100', stop: 'END' },
      ['Mine', { temperature: 0.9, topP: 0.8, maxTokens: 100, stop: ['END'] }],
    ],
  ])('with %s edited here, shows the new values in the fields left alone, the reader\'s in the others, and saves what it shows', async (_name, edit, fields, saved) => {
    const onSave = vi.fn(async () => null);
    const render = (systemPrompt: string, p: Params) =>
      act(() => mount.root.render(<SettingsDialog systemPrompt={systemPrompt} params={p} model={undefined} onSave={onSave} onClose={() => undefined} />));
    render('Before', { temperature: 0.2, topP: 0.5 });
    edit();
    render('Theirs', { temperature: 0.9, topP: 0.5, maxTokens: 100, stop: ['END'] }); // saved in another tab meanwhile
    expect(shown()).toEqual(fields);
    await act(async () => [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!.click());
    expect(onSave).toHaveBeenCalledWith(...saved);
  });
});

describe('SettingsDialog stop sequences refused by the server', () => {
  it('names the refused sequence by its row as shown, an empty row above it counted', async () => {
    const onSave = vi.fn(async () => ({ field: 'stop' as const, text: 'Stop sequence 1 must not contain NUL (U+0000).' }));
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{ stop: ['a', 'b'] }} model={undefined} onSave={onSave} onClose={() => undefined} />));
    type('Stop sequence 1', ''); // sent: ['b'], the server's sequence 1
    await act(async () => [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!.click());
    expect(onSave).toHaveBeenCalledWith('', { stop: ['b'] });
    const text = document.querySelector('[role="dialog"]')!.textContent!;
    expect(text).toContain('Stop sequence 2 must not contain NUL (U+0000).');
    expect(text).not.toContain('Stop sequence 1 must');
  });
});

describe('SettingsDialog stop sequences and the focus', () => {
  const button = (name: string) =>
    [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent?.trim() === name || b.getAttribute('aria-label') === name)!;
  const focused = () => document.activeElement?.getAttribute('aria-label');

  it('puts the focus in the new row after Add, in the row taking a removed one\'s place after its ×: never the page', () => {
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{ stop: ['a', 'b'] }} model={undefined} onSave={async () => null} onClose={() => undefined} />));
    act(() => button('Add a stop sequence').focus());
    act(() => button('Add a stop sequence').click());
    expect(button('Add a stop sequence')).toBeUndefined(); // hidden while the last row is empty
    expect(focused()).toBe('Stop sequence 3');
    act(() => button('Remove stop sequence 1').focus());
    act(() => button('Remove stop sequence 1').click());
    expect(focused()).toBe('Stop sequence 1'); // b, now first
    expect((document.activeElement as HTMLInputElement).value).toBe('b');
    act(() => button('Remove stop sequence 2').click());
    expect(focused()).toBe('Stop sequence 1');
  });
});

describe('SettingsDialog and a stored max answer tokens above the model\'s bound (switched to a model with a lower one)', () => {
  const model = { id: 'small', name: 'Small', demo: false, default: false, maxOutputTokens: 4096 };
  const save = () => act(async () => [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!.click());
  const note = () => document.querySelector('[role="dialog"] [data-param="maxTokens"] p')!.textContent;

  it.each([
    ['the system prompt', () => type('System prompt', 'Be brief.'), 'Be brief.', { temperature: 0.2, maxTokens: 8000 }],
    ['the temperature', () => type('Temperature', '0.5'), '', { temperature: 0.5, maxTokens: 8000 }],
  ])('is left to the server (capped at send) when only %s is edited: saved, not refused', async (_name, edit, prompt, params) => {
    const onSave = vi.fn(async () => null);
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{ temperature: 0.2, maxTokens: 8000 }} model={model} onSave={onSave} onClose={() => undefined} />));
    expect(note()).toBe("Above this model's 4,096: its answers are capped at 4,096.");
    edit();
    await save();
    expect(onSave).toHaveBeenCalledWith(prompt, params);
    expect(document.querySelector('[role="dialog"]')!.textContent).not.toContain('Max answer tokens must');
  });

  it('is refused once edited, still over the bound', async () => {
    const onSave = vi.fn(async () => null);
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{ maxTokens: 8000 }} model={model} onSave={onSave} onClose={() => undefined} />));
    type('Max answer tokens', '6000');
    await save();
    expect(onSave).not.toHaveBeenCalled();
    expect(note()).toBe('Max answer tokens must be a whole number from 1 to 4,096 for this model.');
  });
});

describe('SettingsDialog and a system prompt over 8,000 characters', () => {
  it('says to shorten it, not to split it into messages, and does not save it', async () => {
    const onSave = vi.fn(async () => null);
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={undefined} model={undefined} onSave={onSave} onClose={() => undefined} />));
    type('System prompt', 'a'.repeat(8002));
    expect(document.querySelector('[role="dialog"] .counter')!.textContent).toBe('8,002 / 8,000 characters: too long to save. Shorten it by 2 characters.');
    const save = [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!;
    expect(save.disabled).toBe(true);
  });

  it('says once that it went over, not again at each key typed over it; the counter itself is not live', () => {
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={undefined} model={undefined} onSave={async () => null} onClose={() => undefined} />));
    type('System prompt', 'a'.repeat(8000));
    const said = watchLive(document.querySelector('[role="dialog"]')!);
    type('System prompt', 'a'.repeat(8001));
    expect(said()).toEqual(['Over the limit of 8,000 characters: too long to save.']);
    type('System prompt', 'a'.repeat(8002));
    expect(said()).toEqual([]);
    expect(document.querySelector('[role="dialog"] .counter')!.closest('[role="alert"], [role="status"], [aria-live]')).toBeNull();
  });
});

describe('SettingsDialog Save refused by the server', () => {
  // Save is disabled while the server works: Chromium moves its focus to
  // the page then, out of the modal dialog, where it stayed once the
  // refusal was shown.
  it.each([
    ['a field', { field: 'temperature' as const, text: 'Temperature must be from 0 to 2 (got 2.5).' }, () => document.querySelector('[role="dialog"] [data-param="temperature"] input')],
    ['the second stop sequence', { field: 'stop' as const, text: 'Stop sequence 2 must not contain NUL (U+0000).' }, () => document.querySelector('[role="dialog"] input[aria-label="Stop sequence 2"]')],
    ['no field', { text: 'The server refused the settings: too many requests.' }, () => document.querySelector('[role="dialog"] .form-error')],
  ])('naming %s: the focus goes to what it concerns', async (_name, refusal, expected) => {
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{ stop: ['a', 'b'] }} model={undefined} onSave={async () => refusal} onClose={() => undefined} />));
    const save = [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!;
    act(() => save.focus());
    await act(async () => save.click());
    expect(document.activeElement).not.toBeNull();
    expect(document.activeElement).toBe(expected());
    expect(document.querySelector('[role="dialog"]')!.textContent).toContain(refusal.text);
  });
});

describe('SettingsDialog Save refused: whose focus it takes', () => {
  // The refusal takes only the focus Save had (fallen to the page in
  // Chromium, Save disabled): a user who went on to the system prompt while
  // the server worked keeps typing there.
  const prompt = () => document.querySelector<HTMLTextAreaElement>('[role="dialog"] textarea')!;
  const temperature = () => document.querySelector('[role="dialog"] [data-param="temperature"] input');
  const note = () => document.querySelector('[role="dialog"] .form-error');
  const toField = { field: 'temperature' as const, text: 'Temperature must be from 0 to 2 (got 2.5).' };
  const toNone = { text: 'The server refused the settings: too many requests.' };
  it.each([
    ['a field, the focus fallen to the page', toField, () => (document.activeElement as HTMLElement).blur(), temperature],
    ['no field, the focus fallen to the page', toNone, () => (document.activeElement as HTMLElement).blur(), note],
    ['a field, the user in the system prompt', toField, () => prompt().focus(), prompt],
    ['no field, the user in the system prompt', toNone, () => prompt().focus(), prompt],
  ])('naming %s: the focus goes to the right place', async (_name, refusal, meanwhile, expected) => {
    let answer!: (refusal: ServerRefusal) => void;
    const onSave = () => new Promise<ServerRefusal | null>((resolve) => (answer = resolve));
    act(() => mount.root.render(<SettingsDialog systemPrompt="" params={{}} model={undefined} onSave={onSave} onClose={() => undefined} />));
    const save = [...document.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!;
    act(() => save.focus());
    await act(async () => save.click());
    act(meanwhile);
    await act(async () => answer(refusal));
    expect(document.activeElement).not.toBeNull();
    expect(document.activeElement).toBe(expected());
    expect([...document.querySelectorAll('[role="dialog"] [role="alert"]')].map((a) => a.textContent)).toContain(refusal.text);
  });
});
