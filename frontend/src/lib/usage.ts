// How an answer's token count reads: the answer's own tokens, the prompt's on hover.

import type { Usage } from './protocol';

const fmt = (n: number) => n.toLocaleString('en-US');

/** usageLabel is the text under an answer ("212 tokens") and its tooltip. */
export function usageLabel(u: Usage): { text: string; title: string } {
  const answer = u.completionTokens;
  return {
    text: `${fmt(answer)} token${answer === 1 ? '' : 's'}`,
    title: `This answer: ${fmt(answer)} tokens. The prompt sent to the model (the conversation so far): ${fmt(u.promptTokens)} tokens. Total: ${fmt(u.totalTokens)}.`,
  };
}

/**
 * omittedLabel is the quiet note under an answer whose prompt left out the
 * oldest messages to fit the model's context window, and its tooltip with
 * the count; null when none were left out.
 */
export function omittedLabel(omitted: number | undefined): { text: string; title: string } | null {
  if (!omitted || omitted < 1) return null;
  const n = `${fmt(omitted)} earlier message${omitted === 1 ? ' was' : 's were'}`;
  return {
    text: 'Earlier messages were not sent to the model',
    title: `${n} left out of this answer's prompt to fit the model's context window. The system prompt and the newest messages were sent.`,
  };
}
