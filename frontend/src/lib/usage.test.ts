import { describe, expect, it } from 'vitest';
import { omittedLabel, usageLabel } from './usage';

describe('usageLabel', () => {
  it("shows the answer's tokens and the prompt's on hover", () => {
    const l = usageLabel({ promptTokens: 5478, completionTokens: 212, totalTokens: 5690 });
    expect(l.text).toBe('212 tokens');
    expect(l.title).toMatch(/This answer: 212 tokens\. The prompt .*: 5,478 tokens\. Total: 5,690\./);
  });
  it('says "token" for one', () => {
    expect(usageLabel({ promptTokens: 3, completionTokens: 1, totalTokens: 4 }).text).toBe('1 token');
  });
});

describe('omittedLabel', () => {
  it('says nothing when no message was left out', () => {
    expect(omittedLabel(undefined)).toBeNull();
    expect(omittedLabel(0)).toBeNull();
  });

  it('is a quiet note with the count on hover', () => {
    expect(omittedLabel(1)).toEqual({
      text: 'Earlier messages were not sent to the model',
      title: "1 earlier message was left out of this answer's prompt to fit the model's context window. The system prompt and the newest messages were sent.",
    });
    expect(omittedLabel(1204)?.title).toMatch(/^1,204 earlier messages were left out/);
  });
});
