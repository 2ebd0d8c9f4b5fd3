// The fallback copy (a hidden textarea) leaves the focus and the selection
// as they were (jsdom; select() focuses the textarea, as Blink does).

import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { copyText } from './clipboard';

const copied: string[] = [];

beforeEach(() => {
  copied.length = 0;
  vi.spyOn(HTMLTextAreaElement.prototype, 'select').mockImplementation(function (this: HTMLTextAreaElement) {
    this.focus();
    this.setSelectionRange(0, this.value.length);
    document.getSelection()?.selectAllChildren(this);
  });
  Object.defineProperty(document, 'execCommand', {
    configurable: true,
    value: (command: string) => {
      const ta = document.activeElement;
      if (command !== 'copy' || !(ta instanceof HTMLTextAreaElement)) return false;
      copied.push(ta.value);
      return true;
    },
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  delete (document as { execCommand?: unknown }).execCommand;
  document.getSelection()?.removeAllRanges();
  document.body.replaceChildren();
});

it.each([
  ['the Clipboard API is missing (plain http)', () => vi.stubGlobal('navigator', { ...navigator, clipboard: undefined })],
  [
    'the Clipboard API refuses',
    () => {
      vi.stubGlobal('isSecureContext', true);
      vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText: () => Promise.reject(new Error('NotAllowedError')) } });
    },
  ],
])('when %s, copies with a textarea and gives back the focus and the selection', async (_, setup) => {
  setup();
  const text = document.createElement('p');
  text.textContent = 'Some answer text';
  const button = document.createElement('button');
  button.textContent = 'Copy message';
  document.body.append(text, button);
  button.focus(); // first: jsdom collapses the selection into an element focused
  const range = document.createRange();
  range.setStart(text.firstChild!, 5);
  range.setEnd(text.firstChild!, 11);
  document.getSelection()!.removeAllRanges();
  document.getSelection()!.addRange(range);

  expect(await copyText('copied words')).toBe(true);
  expect(copied).toEqual(['copied words']);
  expect(document.activeElement).toBe(button);
  expect(document.querySelector('textarea')).toBeNull();
  const selection = document.getSelection()!;
  expect(selection.rangeCount).toBe(1);
  expect(selection.getRangeAt(0).toString()).toBe('answer'); // jsdom's Selection.toString is empty
});
