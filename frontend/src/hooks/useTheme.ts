import { useCallback, useEffect, useState } from 'react';
import { applyTheme, loadTheme, nextTheme, type ThemePref } from '../lib/theme';

/** useTheme returns the theme preference and a function cycling it. */
export function useTheme(): [ThemePref, () => void] {
  const [pref, setPref] = useState<ThemePref>(loadTheme);
  useEffect(() => applyTheme(pref), [pref]);
  const cycle = useCallback(() => setPref((p) => nextTheme(p)), []);
  return [pref, cycle];
}
