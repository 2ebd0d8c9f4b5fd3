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
