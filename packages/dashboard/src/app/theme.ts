/**
 * Light and dark: the system's choice (prefers-color-scheme) unless the user picked one with the toggle,
 * kept in localStorage (a display preference, not a secret and not part of a view, so not in the URL).
 * The stylesheet reads `data-theme` on <html>; without it, its prefers-color-scheme rules apply.
 */
export type ThemeChoice = 'light' | 'dark' | 'system';

const STORAGE_KEY = 'tally.theme';

export function loadTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', choice);
  try {
    if (choice === 'system') localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, choice);
  } catch {
    // Storage refused (private mode quotas): the choice holds for this page only.
  }
  window.dispatchEvent(new CustomEvent('tally-theme'));
}

/** The theme in effect now, the system's answered. */
export function effectiveTheme(): 'light' | 'dark' {
  const set = document.documentElement.getAttribute('data-theme');
  if (set === 'light' || set === 'dark') return set;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** A CSS custom property's value in effect now (charts draw on canvas and need real colours). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
