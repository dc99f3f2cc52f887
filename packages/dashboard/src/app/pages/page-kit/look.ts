/**
 * Layout of the Routes, Request logs and Retention pages that styles.css has no class for. Applied as
 * style objects, which preact sets through the CSSOM (`el.style.setProperty`): the CSP's `style-src 'self'`
 * forbids style attributes in markup, not styles set from script. Colours are the theme's custom
 * properties, so light and dark follow the stylesheet.
 */
import type { CSSProperties } from 'preact';

type Style = CSSProperties;

/** A row of labelled controls that wraps at phone width. */
export const controlsRow: Style = {
  display: 'flex',
  flexWrap: 'wrap',
  alignItems: 'flex-end',
  gap: '10px 12px',
  marginBottom: '14px',
};

/** A control that takes the rest of a controls row (a text search). */
export const growField: Style = { flex: '1 1 160px', minWidth: '0' };

/** Buttons side by side. */
export const buttonRow: Style = { display: 'flex', flexWrap: 'wrap', alignItems: 'center', gap: '8px' };

/** A column header that sorts: looks like the header text, acts as a button. */
export function sortButton(active: boolean): Style {
  return {
    background: 'none',
    border: '0',
    padding: '0',
    font: 'inherit',
    color: active ? 'var(--text)' : 'inherit',
    fontWeight: active ? '700' : '600',
    cursor: 'pointer',
    whiteSpace: 'nowrap',
  };
}

/** Text as it was sent (bodies, SSE frames): wrapped, scrollable when long. */
export const preBlock: Style = {
  fontFamily: 'var(--mono)',
  fontSize: '12px',
  background: 'var(--surface-2)',
  border: '1px solid var(--border)',
  borderRadius: '6px',
  padding: '8px 10px',
  margin: '4px 0 12px',
  whiteSpace: 'pre-wrap',
  wordBreak: 'break-all',
  maxHeight: '360px',
  overflow: 'auto',
};

/** A small heading inside a card, with its badges and buttons beside it (`subHeadingText` on the heading). */
export const subHeading: Style = {
  fontSize: '13px',
  margin: '10px 0 4px',
  display: 'flex',
  gap: '8px',
  alignItems: 'center',
  flexWrap: 'wrap',
};

export const subHeadingText: Style = { fontSize: '13px', margin: '0' };

/**
 * Text in a cell that may be long (URLs, header values): wraps beyond 48 characters instead of widening
 * the table, and keeps 14 so that a table squeezed to a phone's width does not fold it into a column of
 * letters.
 */
export const wrapCell: Style = {
  display: 'inline-block',
  minWidth: '14ch',
  maxWidth: '48ch',
  whiteSpace: 'normal',
  wordBreak: 'break-all',
};

/**
 * A table's scroller, positioned: the visually hidden text inside it (absolutely positioned) then scrolls
 * with it instead of widening the page at phone width.
 */
export const scroller: Style = { position: 'relative' };

/** A cell whose number and a muted share sit on one line. */
export const withShare: Style = {
  display: 'inline-flex',
  gap: '6px',
  alignItems: 'baseline',
  justifyContent: 'flex-end',
};
