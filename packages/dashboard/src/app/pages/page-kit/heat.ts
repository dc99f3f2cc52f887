/**
 * Colours of a heat map cell, from the theme in effect: the card's surface blended towards the accent
 * colour by the cell's value, and, for its text, whichever of the theme's text and surface colours reads
 * better on that background (black or white if neither reaches WCAG AA's 4.5:1). Computed, not listed per
 * step in the stylesheet, so every value gets a readable pair in light and dark alike.
 */
import { cssVar } from '../../theme.js';

type Rgb = [number, number, number];

export interface HeatPalette {
  low: Rgb;
  high: Rgb;
  texts: Rgb[];
}

/** `#rgb`, `#rrggbb` or `rgb(r, g, b)`; undefined for anything else. */
export function parseColor(text: string): Rgb | undefined {
  const t = text.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(t);
  if (m) return [...(m[1] as string)].map((c) => parseInt(c + c, 16)) as Rgb;
  m = /^#([0-9a-f]{6})$/i.exec(t);
  if (m) {
    const h = m[1] as string;
    return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
  }
  m = /^rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)/i.exec(t);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return undefined;
}

/** The palette of the theme in effect now. */
export function heatPalette(): HeatPalette {
  const color = (name: string, fallback: Rgb) => parseColor(cssVar(name)) ?? fallback;
  const surface = color('--surface', [255, 255, 255]);
  return {
    low: surface,
    high: color('--accent', [59, 91, 219]),
    texts: [color('--text', [27, 31, 36]), surface],
  };
}

function luminance([r, g, b]: Rgb): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio of two colours (1–21). */
export function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

const hex = (c: Rgb) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

/** Background and text colour of a cell whose value is `t` (0–1) of the scale. */
export function heatCell(palette: HeatPalette, t: number): { background: string; color: string } {
  const k = Math.max(0, Math.min(1, t));
  const bg = palette.low.map((lo, i) => lo + ((palette.high[i] as number) - lo) * k) as Rgb;
  const best = (list: Rgb[]) => list.reduce((a, b) => (contrast(b, bg) > contrast(a, bg) ? b : a));
  let text = best(palette.texts);
  if (contrast(text, bg) < 4.5)
    text = best([
      [0, 0, 0],
      [255, 255, 255],
    ]);
  return { background: hex(bg), color: hex(text) };
}
