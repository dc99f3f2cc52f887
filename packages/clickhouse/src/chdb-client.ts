/**
 * The current ClickHouse engine in this process, through chDB (`chdb` on npm, an optional dependency:
 * its library is ~550 MB, so only the tests, the benchmarks and those who ask for it install it). One
 * data directory per process, as chDB allows.
 */
import { type ClickHouseClient, BASE_SETTINGS, ClickHouseQueryError, type Settings, toQueryError } from './client.js';

interface ChdbSession {
  queryAsync(sql: string, opts?: { format?: string }): Promise<{ text(): string }>;
  insert(params: {
    table: string;
    values: Buffer;
    format: 'JSONEachRow' | 'TabSeparated';
    columns?: readonly string[];
    settings?: Record<string, string | number>;
  }): Promise<unknown>;
  close(): void;
}

/** `SETTINGS a = 1, b = 'x'` for a statement (chDB takes settings in the SQL text only). */
function settingsClause(settings: Settings | undefined): string {
  const all = { ...BASE_SETTINGS, ...settings };
  return ` SETTINGS ${Object.entries(all)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v}'`}`)
    .join(', ')}`;
}

export async function openChdbClient(path: string): Promise<ClickHouseClient> {
  let chdb: { Session: new (path: string) => ChdbSession };
  try {
    // A name in a variable: TypeScript does not resolve it, so building Tally never needs chdb installed.
    const name = 'chdb';
    chdb = (await import(name)) as typeof chdb;
  } catch (error) {
    throw new Error('the in-process ClickHouse engine needs the optional package chdb: npm install chdb', {
      cause: error,
    });
  }
  const session = new chdb.Session(path);
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw toQueryError(error);
    }
  };
  return {
    engine: 'chdb',
    insertFormat: 'TabSeparated',
    command: (sql, settings) =>
      run(async () => {
        await session.queryAsync(settings ? sql + settingsClause(settings) : sql);
      }),
    query: <T>(sql: string, settings?: Settings) =>
      run(async () => {
        const text = (await session.queryAsync(sql + settingsClause(settings), { format: 'JSONEachRow' })).text();
        const rows: T[] = [];
        for (const line of text.split('\n')) if (line) rows.push(JSON.parse(line) as T);
        return rows;
      }),
    insert: (table, columns, data, settings) =>
      run(async () => {
        const format = data.format;
        // chDB's raw insert reads text formats only (its whitelist): no RowBinary.
        if (format !== 'JSONEachRow' && format !== 'TabSeparated')
          throw new ClickHouseQueryError(`chDB inserts JSONEachRow or TabSeparated, not ${format}`, 73); // UNKNOWN_FORMAT
        await session.insert({
          table,
          columns,
          values: typeof data.body === 'string' ? Buffer.from(data.body) : data.body,
          format,
          ...(settings ? { settings: { ...settings } } : {}),
        });
      }),
    close: async () => session.close(),
  };
}
