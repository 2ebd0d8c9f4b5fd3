// Why an answer ended, when the reader needs to know: an answer cut at the
// model's output limit reads like a complete one, and one the provider's
// content filter stopped may have no text at all. finishReason length
// covers a full context window too (llm/openai/attempt.go maps Mistral's
// model_length to it): the note names both, and what may help.
// transport/api/export.go's statusNote says the same words.

import type { Message } from './protocol';

/** FinishNotice is the note under an ended answer: its kind (for styling and tests) and its sentence. */
export interface FinishNotice {
  kind: 'length' | 'content_filter';
  text: string;
}

const NOTICES: Record<FinishNotice['kind'], string> = {
  length: 'Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.',
  content_filter: "Stopped by the provider's content filter.",
};

/**
 * finishNotice is the note shown under an assistant answer that ended for a
 * reason the text does not show (finishReason `length` or
 * `content_filter`), or null: a streaming answer, a user message, `stop`,
 * no reason, or a reason without a notice.
 */
export function finishNotice(m: Pick<Message, 'role' | 'status' | 'finishReason'>): FinishNotice | null {
  if (m.role !== 'assistant' || m.status === 'streaming') return null;
  const kind = m.finishReason;
  if (kind !== 'length' && kind !== 'content_filter') return null;
  return { kind, text: NOTICES[kind] };
}
