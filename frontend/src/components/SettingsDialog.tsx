// The conversation's settings: its system prompt and, beside it, its
// sampling parameters (temperature, top-p, max answer tokens, stop
// sequences). Out-of-range values are shown inline in plain words and
// never saved; a refusal by the server is shown on the field it names.

import { useEffect, useId, useRef, useState } from 'react';
import { useFocusSoon } from '../hooks/useFocusSoon';
import { useOpen } from '../hooks/useOpen';
import { MAX_SYSTEM_PROMPT_CHARS, lengthStatus } from '../lib/limits';
import {
  MAX_STOP_SEQUENCES,
  PARAM_LABELS,
  cappedHint,
  checkParams,
  defaultHint,
  paramsForm,
  refusalByRow,
  type ParamErrors,
  type ParamField,
  type ParamsForm,
  type ServerRefusal,
} from '../lib/params';
import type { ModelInfo, Params } from '../lib/protocol';
import { Dialog } from './Dialog';
import { LengthCounter } from './LengthCounter';

/** SettingsDialogProps: the stored settings, the conversation's model, and the save action. */
export interface SettingsDialogProps {
  systemPrompt: string;
  params: Params | undefined;
  /** The conversation's model (bounds and defaults), when known. */
  model: ModelInfo | undefined;
  /** Saves; resolves to null when saved, else the refusal. */
  onSave: (systemPrompt: string, params: Params) => Promise<ServerRefusal | null>;
  onClose: () => void;
  /** Told of a refusal that came after the dialog was closed (Cancel or Escape while saving): it has nowhere to show it. */
  onRefusedAfterClose?: (refusal: ServerRefusal) => void;
  /** A system prompt typed earlier and not saved (the dialog was closed by navigation): the text to start from. */
  draft?: string;
  /** Told of each change of the system prompt typed: the text, or undefined when it is back to the stored one. */
  onDraft?: (text: string | undefined) => void;
}

/** SettingsDialog edits a conversation's system prompt and parameters. */
export function SettingsDialog({ systemPrompt, params, model, onSave, onClose, onRefusedAfterClose, draft, onDraft }: SettingsDialogProps) {
  const open = useOpen();
  // A draft kept from a dialog closed by navigation, unless it is what is stored now.
  const [restored] = useState(() => (draft !== undefined && draft !== systemPrompt ? draft : undefined));
  const [text, setText] = useState(restored ?? systemPrompt);
  const [form, setForm] = useState<ParamsForm>(() => paramsForm(params));
  // What the fields were last filled from: the conversation's settings as
  // stored. When they change while the dialog is open (saved in another
  // tab), the fields the reader has not edited show the new values, those
  // edited keep the reader's: what is shown is what Save saves, and a
  // change made elsewhere is neither undone nor saved unseen.
  const [stored, setStored] = useState(() => ({ text: systemPrompt, form: paramsForm(params) }));
  const storedNow = paramsForm(params);
  if (systemPrompt !== stored.text || !sameForm(storedNow, stored.form)) {
    setStored({ text: systemPrompt, form: storedNow });
    setText((t) => (t === stored.text ? systemPrompt : t));
    setForm((f) => refill(f, stored.form, storedNow));
  }
  const [touched, setTouched] = useState<Partial<Record<ParamField, boolean>>>({});
  const [refusal, setRefusal] = useState<ServerRefusal | null>(null);
  const [saving, setSaving] = useState(false);
  const fields = useRef<HTMLFieldSetElement>(null);
  const refusalNote = useRef<HTMLParagraphElement>(null);
  const saveButton = useRef<HTMLButtonElement>(null);
  const focusSoon = useFocusSoon(saveButton);
  // Always counted (the limit is small); over it, Save is refused, never the text cut.
  const length = lengthStatus(text, MAX_SYSTEM_PROMPT_CHARS, 0, 'systemPrompt');
  const counterId = useId();
  // A max answer tokens left as stored is not checked against the model's
  // bound: a conversation switched to a model with a lower one keeps it,
  // each answer capped there by the server (said under the field), and a
  // save of another field was refused for it.
  const maxTokensKept = form.maxTokens === stored.form.maxTokens;
  const check = checkParams(form, model, { maxTokensKept });
  const localErrors: ParamErrors = check.ok ? {} : check.errors;
  const shownError = (f: ParamField): string | undefined =>
    (touched[f] ? localErrors[f] : undefined) ?? (refusal?.field === f ? refusal.text : undefined);

  function edit(field: ParamField, next: Partial<ParamsForm>) {
    setForm((f) => ({ ...f, ...next }));
    if (refusal?.field === field || (refusal && !refusal.field)) setRefusal(null);
  }

  async function save() {
    setTouched({ temperature: true, topP: true, maxTokens: true, stop: true });
    if (!check.ok || length.over) return;
    setSaving(true);
    const rows = form.stop;
    const answer = await onSave(text, check.params);
    const refused = answer && refusalByRow(answer, rows);
    if (!open.current) {
      if (refused) onRefusedAfterClose?.(refused);
      return;
    }
    setSaving(false);
    if (!refused) {
      onClose();
      return;
    }
    setRefusal(refused);
    // What the refusal concerns takes the focus Save had (disabled meanwhile), unless the user moved it.
    focusSoon(() => (refused.field ? refusedInput(fields.current, refused) : refusalNote.current));
  }

  const touch = (f: ParamField) => () => setTouched((t) => ({ ...t, [f]: true }));
  return (
    <Dialog
      title="System prompt and parameters"
      onClose={onClose}
      actions={
        <>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button ref={saveButton} type="button" className="primary" disabled={saving || length.over} onClick={() => void save()}>
            Save
          </button>
        </>
      }
    >
      <p className="hint">Instructions the model gets before every message of this conversation.</p>
      {restored !== undefined && <p className="hint">Your unsaved system prompt is back. Save keeps it, Cancel discards it.</p>}
      <textarea
        className="system-prompt"
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          onDraft?.(e.target.value === stored.text ? undefined : e.target.value);
        }}
        rows={6}
        aria-describedby={counterId}
        aria-invalid={length.over || undefined}
        aria-label="System prompt"
        placeholder="You are a helpful assistant."
      />
      <LengthCounter id={counterId} length={length} className="hint counter" />
      <fieldset className="params" ref={fields}>
        <legend>Parameters</legend>
        <p className="hint">Leave a field empty to use the model&apos;s default.</p>
        <div className="params-grid">
          <NumberField
            field="temperature"
            value={form.temperature}
            placeholder={defaultHint(model, 'temperature')}
            hint="0 to 2: higher is more varied."
            error={shownError('temperature')}
            onChange={(v) => edit('temperature', { temperature: v })}
            onBlur={touch('temperature')}
          />
          <NumberField
            field="topP"
            value={form.topP}
            placeholder={defaultHint(model, 'topP')}
            hint="Above 0, at most 1."
            error={shownError('topP')}
            onChange={(v) => edit('topP', { topP: v })}
            onBlur={touch('topP')}
          />
          <NumberField
            field="maxTokens"
            value={form.maxTokens}
            placeholder={defaultHint(model, 'maxTokens')}
            hint={
              (maxTokensKept ? cappedHint(form.maxTokens, model) : undefined) ??
              (model?.maxOutputTokens ? `1 to ${model.maxOutputTokens.toLocaleString('en-US')} for this model.` : 'The longest answer, in tokens.')
            }
            error={shownError('maxTokens')}
            integer
            onChange={(v) => edit('maxTokens', { maxTokens: v })}
            onBlur={touch('maxTokens')}
          />
        </div>
        <StopSequences
          stop={form.stop}
          error={shownError('stop')}
          onChange={(stop) => edit('stop', { stop })}
          onBlur={touch('stop')}
        />
      </fieldset>
      {refusal && !refusal.field && (
        <p ref={refusalNote} className="form-error" role="alert" tabIndex={-1}>
          {refusal.text}
        </p>
      )}
    </Dialog>
  );
}

/**
 * refusedInput is the input of the field a refusal names: for the stop
 * sequences, the row it names (refusalByRow), else their first.
 */
function refusedInput(fields: HTMLElement | null, refusal: ServerRefusal): HTMLInputElement | null {
  const param = fields?.querySelector(`[data-param="${refusal.field}"]`);
  const row = /^Stop sequence (\d+)\b/.exec(refusal.text)?.[1];
  return (row && param?.querySelector<HTMLInputElement>(`input[aria-label="Stop sequence ${row}"]`)) || (param?.querySelector<HTMLInputElement>('input') ?? null);
}

/** sameForm says whether two forms hold the same text. */
function sameForm(a: ParamsForm, b: ParamsForm): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * refill is the form once the stored settings changed from before to now:
 * each field the reader left as it was (before's) shows now's, the others
 * keep the reader's text.
 */
function refill(form: ParamsForm, before: ParamsForm, now: ParamsForm): ParamsForm {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return {
    temperature: form.temperature === before.temperature ? now.temperature : form.temperature,
    topP: form.topP === before.topP ? now.topP : form.topP,
    maxTokens: form.maxTokens === before.maxTokens ? now.maxTokens : form.maxTokens,
    stop: same(form.stop, before.stop) ? now.stop : form.stop,
  };
}

interface NumberFieldProps {
  field: Exclude<ParamField, 'stop'>;
  value: string;
  placeholder: string;
  hint: string;
  error: string | undefined;
  integer?: boolean;
  onChange: (v: string) => void;
  onBlur: () => void;
}

function NumberField({ field, value, placeholder, hint, error, integer, onChange, onBlur }: NumberFieldProps) {
  const id = useId();
  return (
    <div className={`param${error ? ' invalid' : ''}`} data-param={field}>
      <label htmlFor={id}>{PARAM_LABELS[field]}</label>
      <input
        id={id}
        type="text"
        inputMode={integer ? 'numeric' : 'decimal'}
        autoComplete="off"
        spellCheck={false}
        value={value}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-note`}
        onChange={(e) => onChange(e.target.value)}
        onBlur={onBlur}
      />
      <p id={`${id}-note`} className={error ? 'field-error' : 'hint'} role={error ? 'alert' : undefined}>
        {error ?? hint}
      </p>
    </div>
  );
}

interface StopSequencesProps {
  stop: readonly string[];
  error: string | undefined;
  onChange: (stop: string[]) => void;
  onBlur: () => void;
}

function StopSequences({ stop, error, onChange, onBlur }: StopSequencesProps) {
  const id = useId();
  const rows = stop.length > 0 ? stop : [''];
  const set = (i: number, v: string) => onChange(rows.map((s, j) => (j === i ? v : s)));
  // The row whose input takes the focus once rendered: the new one after
  // "Add a stop sequence" (the button hides itself while the last row is
  // empty), the one taking a removed row's place after its × (gone with
  // its row). The focus fell to the page with the button pressed.
  const group = useRef<HTMLDivElement>(null);
  const focusRow = useRef<number | null>(null);
  useEffect(() => {
    const i = focusRow.current;
    if (i === null) return;
    focusRow.current = null;
    group.current?.querySelectorAll<HTMLInputElement>('.stop-row input')[i]?.focus();
  });
  const add = () => {
    focusRow.current = rows.length;
    onChange([...rows, '']);
  };
  const remove = (i: number) => {
    focusRow.current = Math.max(0, Math.min(i, rows.length - 2));
    onChange(rows.filter((_, j) => j !== i));
  };
  return (
    <div ref={group} className={`param stop${error ? ' invalid' : ''}`} data-param="stop" role="group" aria-labelledby={`${id}-label`}>
      <span id={`${id}-label`} className="param-label">
        {PARAM_LABELS.stop}
      </span>
      {rows.map((s, i) => (
        <div className="stop-row" key={i}>
          <input
            type="text"
            autoComplete="off"
            spellCheck={false}
            value={s}
            aria-label={`Stop sequence ${i + 1}`}
            aria-invalid={error ? true : undefined}
            aria-describedby={`${id}-note`}
            placeholder={i === 0 ? 'none' : ''}
            onChange={(e) => set(i, e.target.value)}
            onBlur={onBlur}
          />
          {(rows.length > 1 || s !== '') && (
            <button type="button" className="icon" aria-label={`Remove stop sequence ${i + 1}`} onClick={() => remove(i)}>
              ×
            </button>
          )}
        </div>
      ))}
      {rows.length < MAX_STOP_SEQUENCES && rows[rows.length - 1] !== '' && (
        <button type="button" className="link-button add-stop" onClick={add}>
          Add a stop sequence
        </button>
      )}
      <p id={`${id}-note`} className={error ? 'field-error' : 'hint'} role={error ? 'alert' : undefined}>
        {error ?? `Up to ${MAX_STOP_SEQUENCES}; the answer ends where one appears. Write \\n for a line break.`}
      </p>
    </div>
  );
}
