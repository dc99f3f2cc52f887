/**
 * Reading what a page shows, and what the API answers, in the forms the tests compare: an answer's rows
 * as records by column name; a card's table column and a stat as their raw `data-value`s (the page
 * formats for people; tests compare raw values, and format the API's answer when they check the text);
 * a card's CSV as the file the browser saves.
 */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import type { DashboardServer } from './server.js';

export type Answer = Awaited<ReturnType<DashboardServer['query']>>;
export type Rec = Record<string, unknown>;

export const recordsOf = (a: Answer): Rec[] =>
  a.rows.map((r) => Object.fromEntries(a.columns.map((c, i) => [c.name, r[i]])));

/** The raw values of one column of a card's table. */
export const column = (page: Page, card: string, col: string) =>
  page
    .locator(`[data-card="${card}"] tbody td[data-col="${col}"]`)
    .evaluateAll((tds) => tds.map((td) => td.getAttribute('data-value')));

/** A stat's raw value. */
export const statValue = (page: Page, id: string) =>
  page.locator(`[data-stat="${id}"] .stat-value`).getAttribute('data-value');

/** Clicks a card's CSV button (the first, or the one named `what`) and reads the file it saves. */
export async function downloadCsv(page: Page, card: string, what?: string): Promise<string> {
  const button = what
    ? page.locator(`[data-card="${card}"]`).getByRole('button', { name: `Download ${what} as CSV` })
    : page.locator(`[data-card="${card}"] .card-actions button`, { hasText: 'CSV' }).first();
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return readFileSync(await download.path(), 'utf8');
}
