import { describe, expect, it } from 'vitest';
import { groupModels } from './models';
import type { ModelInfo } from './protocol';

function model(id: string, upstream?: string, upstreamLabel?: string, extra: Partial<ModelInfo> = {}): ModelInfo {
  return { id, name: id, demo: false, default: false, ...(upstream ? { upstream, upstreamLabel } : {}), ...extra };
}

const ids = (ms: readonly ModelInfo[]) => ms.map((m) => m.id);

describe('groupModels', () => {
  it('groups models under their upstreams in the order of the upstreams list, the demo model first', () => {
    const models = [
      model('demo', undefined, undefined, { demo: true }),
      model('llama3.1', 'ollama', 'Local (Ollama)'),
      model('gpt-4o-mini', 'openai', 'OpenAI'),
      model('vllm/llama3.1', 'vllm', 'vLLM (reasoning)'),
      model('gpt-4o', 'openai', 'OpenAI'),
    ];
    const upstreams = [
      { name: 'openai', label: 'OpenAI' },
      { name: 'ollama', label: 'Local (Ollama)' },
      { name: 'vllm', label: 'vLLM (reasoning)' },
    ];
    const g = groupModels(models, upstreams);
    expect(ids(g.ungrouped)).toEqual(['demo']);
    expect(g.groups.map((x) => [x.label, ids(x.models)])).toEqual([
      ['OpenAI', ['gpt-4o-mini', 'gpt-4o']],
      ['Local (Ollama)', ['llama3.1']],
      ['vLLM (reasoning)', ['vllm/llama3.1']],
    ]);
  });

  it('leaves out an upstream without models, and adds one the list lacks with the models\' label', () => {
    const g = groupModels([model('a', 'one', 'One'), model('b', 'two', 'Two')], [{ name: 'one', label: 'One' }, { name: 'down', label: 'Down' }]);
    expect(g.groups.map((x) => [x.name, x.label])).toEqual([
      ['one', 'One'],
      ['two', 'Two'],
    ]);
  });

  it('an older server without upstreams gives one flat list', () => {
    const g = groupModels([model('a'), model('b')]);
    expect(ids(g.ungrouped)).toEqual(['a', 'b']);
    expect(g.groups).toEqual([]);
  });

  it('an upstream without a label is titled with its name', () => {
    expect(groupModels([model('a', 'local')], [{ name: 'local', label: '' }]).groups[0]!.label).toBe('local');
    expect(groupModels([model('a', 'local')]).groups[0]!.label).toBe('local');
  });
});
