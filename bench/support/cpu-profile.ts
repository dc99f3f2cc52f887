/**
 * Summarizes a V8 CPU profile (`.cpuprofile`, as `node --cpu-prof` or the inspector's Profiler writes it)
 * for the Fastify benchmark: where the server's busy samples went by area, the heaviest functions by self
 * time, and Tally's own functions by inclusive time (their callees included: JSON, PGlite, node internals).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type Area =
  | 'idle'
  | 'gc'
  | 'tally plugin'
  | 'tally tracker'
  | 'tally store'
  | 'tally core'
  | 'pglite'
  | 'fastify'
  | 'pino'
  | 'node'
  | 'native'
  | 'other';

const TALLY_AREAS: Record<string, Area> = {
  fastify: 'tally plugin',
  node: 'tally tracker',
  store: 'tally store',
  core: 'tally core',
};

export function areaOf(frame: CallFrame): Area {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  const tally = /\/packages\/(fastify|node|store|core)\//.exec(url);
  if (tally) return TALLY_AREAS[tally[1] as string] as Area;
  if (url.includes('@electric-sql/pglite') || url.startsWith('wasm://')) return 'pglite';
  if (/node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|fast-json-stringify)\//.test(url)) {
    return 'fastify';
  }
  if (/node_modules\/(pino|pino-http|pino-std-serializers|thread-stream|sonic-boom)\//.test(url)) return 'pino';
  if (url.startsWith('node:')) return 'node';
  // Natives V8 shows without a script: writev (socket writes), JSON, (program)…
  if (url === '') return 'native';
  return 'other';
}

const isTally = (area: Area) => area.startsWith('tally');

/**
 * The body capture's `res.write`/`res.end` wrappers (capturingWrite/capturingEnd; res.write/res.end in
 * older builds): they call the originals, so sending the response
 * itself runs inside them. Left out of the "under Tally" accounting (their own self time still counts).
 */
const isSendWrapper = (frame: CallFrame) =>
  frame.url.includes('/packages/fastify/') &&
  frame.url.includes('body-capture') &&
  ['capturingEnd', 'capturingWrite', 'res.end', 'res.write'].includes(frame.functionName);

function label(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(packages|node_modules)\//, '$1/').replace(/^file:\/\//, '');
  const name = frame.functionName || '(anonymous)';
  return file ? `${name} ${file}:${frame.lineNumber + 1}` : name;
}

export interface ProfileSummary {
  /** Sampled milliseconds in all, and not idle. */
  totalMs: number;
  busyMs: number;
  /** Busy ms by area of the innermost frame (self time). */
  byArea: [Area, number][];
  /** Busy ms with a Tally frame anywhere on the stack (Tally and everything it called; see isSendWrapper). */
  underTallyMs: number;
  /** Heaviest functions by self time. */
  topSelf: [string, number][];
  /** Self time of every function (busy samples only), labelled `area | function file:line`. */
  selfByFunction: Map<string, number>;
  /** Tally functions by inclusive time (a function counted once per sample however deep it recurses). */
  topTally: [string, number][];
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const byArea = new Map<Area, number>();
  const self = new Map<string, number>();
  const tallyInclusive = new Map<string, number>();
  let totalMs = 0;
  let underTallyMs = 0;
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);

  // timeDeltas[i] is the time before sample i; the time a sample stands for is the gap to the next one.
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(profile.samples[i] as number);
    if (!leaf) continue;
    totalMs += ms;
    const area = areaOf(leaf.callFrame);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    if (area === 'idle') continue;
    add(self, `${area} | ${label(leaf.callFrame)}`, ms);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame;
      if (!isTally(areaOf(frame)) || isSendWrapper(frame)) continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      add(tallyInclusive, key, ms);
    }
    if (seen.size > 0) underTallyMs += ms;
  }
  const sorted = <K>(map: Map<K, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  return {
    totalMs,
    busyMs: totalMs - (byArea.get('idle') ?? 0),
    byArea: sorted(byArea, 20).filter(([a]) => a !== 'idle'),
    underTallyMs,
    topSelf: sorted(self, top),
    selfByFunction: self,
    topTally: sorted(tallyInclusive, top),
  };
}

/**
 * The summary as text, in CPU µs per request served during the profiled window; with a baseline (the same
 * window of another server, e.g. bare Fastify) the areas get a column for it and the difference.
 */
export function formatProfile(
  s: ProfileSummary,
  requests: number,
  baseline?: { summary: ProfileSummary; requests: number; name: string },
): string {
  const us = (ms: number, n: number) => ((ms * 1000) / Math.max(1, n)).toFixed(1).padStart(7);
  const pct = (ms: number) => `${((100 * ms) / s.busyMs).toFixed(1).padStart(5)}%`;
  const base = new Map(baseline?.summary.byArea);
  const areas = [...new Set([...s.byArea.map(([a]) => a), ...base.keys()])];
  const own = new Map(s.byArea);
  const head = baseline ? `${baseline.name.padStart(7)}    this  change` : '   this';
  const lines = [
    `${requests} requests in the window; busy ${(s.busyMs / 1000).toFixed(2)} s of ${(s.totalMs / 1000).toFixed(2)} s ` +
      `sampled; a Tally frame (send wrappers aside) on the stack in ${pct(s.underTallyMs).trim()} of busy samples`,
    'self time by area, CPU µs per request:',
    `  ${'area'.padEnd(14)}${head}`,
    ...areas.map((a) => {
      const mine = us(own.get(a) ?? 0, requests);
      if (!baseline) return `  ${a.padEnd(14)}${mine}`;
      const theirs = us(base.get(a) ?? 0, baseline.requests);
      const change = ((own.get(a) ?? 0) * 1000) / requests - ((base.get(a) ?? 0) * 1000) / baseline.requests;
      return `  ${a.padEnd(14)}${theirs} ${mine} ${`${change >= 0 ? '+' : ''}${change.toFixed(1)}`.padStart(7)}`;
    }),
    `  ${'total busy'.padEnd(14)}${
      baseline ? `${us(baseline.summary.busyMs, baseline.requests)} ` : ''
    }${us(s.busyMs, requests)}`,
    'top functions by self time (% of busy):',
    ...s.topSelf.map(([name, ms]) => `  ${pct(ms)}  ${name}`),
    ...(baseline ? [`functions by change in self time against ${baseline.name}, CPU µs per request:`] : []),
    ...(baseline ? topChanges(s, requests, baseline.summary, baseline.requests, 15) : []),
    "Tally functions by inclusive time (callees included, % of busy; the body capture's res.write/res.end",
    'wrappers are left out: sending the response runs inside them):',
    ...s.topTally.map(([name, ms]) => `  ${pct(ms)}  ${name}`),
  ];
  return lines.join('\n');
}

function topChanges(
  s: ProfileSummary,
  requests: number,
  base: ProfileSummary,
  baseRequests: number,
  n: number,
): string[] {
  const names = new Set([...s.selfByFunction.keys(), ...base.selfByFunction.keys()]);
  const perRequest = (ms: number | undefined, count: number) => ((ms ?? 0) * 1000) / Math.max(1, count);
  return [...names]
    .map((name): [string, number] => [
      name,
      perRequest(s.selfByFunction.get(name), requests) - perRequest(base.selfByFunction.get(name), baseRequests),
    ])
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, change]) => `  ${`${change >= 0 ? '+' : ''}${change.toFixed(1)}`.padStart(7)}  ${name}`);
}
