import { useApp, useAppState } from '../hooks/app';

/** Toasts renders short notices; errors are announced assertively. */
export function Toasts() {
  const app = useApp();
  const toasts = useAppState((s) => s.toasts);
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <span>{t.text}</span>
          <button type="button" className="icon" aria-label="Dismiss" title="Dismiss" onClick={() => app.dismissToast(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
