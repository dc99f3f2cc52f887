import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatAxisTime, formatCompact, formatNumber, formatTime } from '../format.js';
import { cssVar } from '../theme.js';

export interface ChartSeries {
  label: string;
  /** One value per time; null leaves a gap. */
  values: readonly (number | null)[];
}

/**
 * A time series chart (uPlot: canvas, 20-odd KB gzip, fast with thousands of points). Times are drawn in
 * the view's zone, not the browser's; colours come from the stylesheet's `--series-N` and axis variables,
 * so the chart follows light and dark; the width follows its card. The canvas is an image to assistive
 * technology, named by `label`; its numbers are in the legend and in the card's CSV.
 */
export function TimeChart(props: {
  label: string;
  /** Bucket starts, epoch ms. */
  times: readonly number[];
  series: readonly ChartSeries[];
  tz: string;
  /** Drives the axis and legend time format. */
  interval: 'hour' | 'day' | 'week' | 'month';
  kind?: 'line' | 'bars';
  height?: number;
  /** The legend's values (default: numbers as formatNumber writes them). */
  format?: (v: number | null) => string;
  /** The y-axis labels (default: compact numbers, `2.5K`); e.g. formatMs for a latency chart. */
  axis?: (v: number) => string;
  /** Counts: ticks on whole numbers only (no 0.5 user). */
  integers?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const height = props.height ?? 240;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const make = () => {
      plot.current?.destroy();
      el.removeAttribute('data-drawn');
      const opts = options(props, el.clientWidth || 600, height);
      opts.hooks = {
        draw: [() => drawn(el, props.times.length > 0)],
        // At rest the legend shows the latest bucket's values (uPlot's default is a row of dashes).
        ready: [(u) => props.times.length > 0 && u.setLegend({ idx: props.times.length - 1 })],
      };
      plot.current = new uPlot(opts, data(props), el);
    };
    make();
    const resize = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (plot.current && w > 0 && w !== plot.current.width) plot.current.setSize({ width: w, height });
    });
    resize.observe(el);
    const dark = matchMedia('(prefers-color-scheme: dark)');
    window.addEventListener('tally-theme', make);
    dark.addEventListener('change', make);
    return () => {
      resize.disconnect();
      window.removeEventListener('tally-theme', make);
      dark.removeEventListener('change', make);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.times, props.series, props.tz, props.interval, props.kind, height]);

  return <div class="chart" ref={box} role="img" aria-label={props.label} />;
}

/**
 * Marks the chart drawn (`data-drawn`, which tests wait for) and, for the first chart of the page load
 * that has data, the performance mark `tally:first-chart`: the dashboard's first meaningful paint.
 */
function drawn(el: HTMLElement, withData: boolean) {
  el.setAttribute('data-drawn', 'true');
  if (withData && performance.getEntriesByName('tally:first-chart').length === 0) performance.mark('tally:first-chart');
}

/** Days on an axis of daily (or longer) steps; hours otherwise, with the date at midnight. */
function axisTime(ms: number, tz: string, incrSeconds: number): string {
  return formatAxisTime(ms, tz, incrSeconds >= 86_400 ? 'day' : 'hour');
}

/** Tick steps of 1, 2 and 5 times a power of ten, from 1 up: never a fraction. */
const WHOLE_STEPS = Array.from({ length: 13 }, (_, k) => [1, 2, 5].map((m) => m * 10 ** k)).flat();

function data(props: { times: readonly number[]; series: readonly ChartSeries[] }): uPlot.AlignedData {
  return [props.times.map((t) => t / 1000), ...props.series.map((s) => s.values.map((v) => v ?? null))];
}

function options(props: Parameters<typeof TimeChart>[0], width: number, height: number): uPlot.Options {
  const axis = cssVar('--chart-axis') || '#667';
  const grid = cssVar('--chart-grid') || '#ddd';
  const timeStyle = props.interval === 'hour' ? 'minute' : 'day';
  const format = props.format ?? ((v: number | null) => formatNumber(v));
  const bars = props.kind === 'bars' ? uPlot.paths.bars?.({ size: [0.7, 64], gap: 1 }) : undefined;
  // Bars are centred on their bucket's start: half a step of room at each end keeps the first and last whole.
  const step = props.times.length > 1 ? ((props.times[1] as number) - (props.times[0] as number)) / 1000 : 3600;
  const DAY_S = 86_400;
  // Daily (or longer) buckets get ticks on whole days only, never at 08:00 and 16:00.
  const incrs =
    props.interval === 'hour'
      ? undefined
      : [DAY_S, 2 * DAY_S, 3 * DAY_S, 7 * DAY_S, 14 * DAY_S, 28 * DAY_S, 91 * DAY_S, 182 * DAY_S, 365 * DAY_S];
  return {
    width,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), props.tz),
    cursor: { points: { size: 6 }, drag: { x: false, y: false } },
    legend: { live: true },
    scales: {
      x: bars ? { time: true, range: (_u, min, max) => [min - step / 2, max + step / 2] } : { time: true },
      y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        ...(incrs ? { incrs } : {}),
        space: 60,
        values: (_u, splits, _axis, _space, incr) => splits.map((s) => axisTime(s * 1000, props.tz, incr)),
      },
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        // Room for the widest label: compact numbers fit 56 px; units ("500 ms") need more.
        size: props.axis ? 72 : 56,
        ...(props.integers ? { incrs: WHOLE_STEPS } : {}),
        values: (_u, splits) => splits.map((v) => (props.axis ?? formatCompact)(v)),
      },
    ],
    series: [
      { label: 'Time', value: (_u, v) => (v == null ? '–' : formatTime(v * 1000, props.tz, timeStyle)) },
      ...props.series.map((s, i) => {
        const color = cssVar(`--series-${(i % 6) + 1}`) || '#36c';
        return {
          label: s.label,
          stroke: color,
          width: 2,
          fill: bars ? color : undefined,
          paths: bars,
          points: { show: !bars && props.times.length <= 60 },
          value: (_u: uPlot, v: number | null) => format(v),
        };
      }),
    ],
  };
}
