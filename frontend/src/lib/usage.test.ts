import { describe, expect, it } from 'vitest';
import { usageLabel } from './usage';

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
