// Light and dark themes: follow the system unless the user picked one.

/** ThemePref is the user's choice. */
export type ThemePref = 'system' | 'light' | 'dark';

const KEY = 'chatd.theme';

/** loadTheme returns the saved preference. */
export function loadTheme(): ThemePref {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

/** applyTheme sets the preference on <html> (CSS reads data-theme) and saves it. */
export function applyTheme(pref: ThemePref): void {
  const root = document.documentElement;
  if (pref === 'system') delete root.dataset.theme;
  else root.dataset.theme = pref;
  try {
    if (pref === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, pref);
  } catch {
    // not saved
  }
}

/** effectiveTheme is what is shown now. */
export function effectiveTheme(pref: ThemePref): 'light' | 'dark' {
  if (pref !== 'system') return pref;
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** nextTheme cycles system -> light -> dark -> system. */
export function nextTheme(pref: ThemePref): ThemePref {
  return pref === 'system' ? 'light' : pref === 'light' ? 'dark' : 'system';
}
