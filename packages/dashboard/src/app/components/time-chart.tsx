import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatCompact, formatNumber, formatTime } from '../format.js';
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
  format?: (v: number | null) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const height = props.height ?? 240;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const make = () => {
      plot.current?.destroy();
      plot.current = new uPlot(options(props, el.clientWidth || 600, height), data(props), el);
      el.setAttribute('data-drawn', 'true');
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

function data(props: { times: readonly number[]; series: readonly ChartSeries[] }): uPlot.AlignedData {
  return [props.times.map((t) => t / 1000), ...props.series.map((s) => s.values.map((v) => v ?? null))];
}

function options(props: Parameters<typeof TimeChart>[0], width: number, height: number): uPlot.Options {
  const axis = cssVar('--chart-axis') || '#667';
  const grid = cssVar('--chart-grid') || '#ddd';
  const timeStyle = props.interval === 'hour' ? 'minute' : 'day';
  const format = props.format ?? ((v: number | null) => formatNumber(v));
  const bars = props.kind === 'bars' ? uPlot.paths.bars?.({ size: [0.7, 48], gap: 1 }) : undefined;
  return {
    width,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), props.tz),
    cursor: { points: { size: 6 }, drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
    axes: [
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        values: (_u, splits) => splits.map((s) => formatTime(s * 1000, props.tz, timeStyle)),
      },
      {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        size: 56,
        values: (_u, splits) => splits.map((v) => formatCompact(v)),
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
          points: { show: props.times.length <= 60 },
          value: (_u: uPlot, v: number | null) => format(v),
        };
      }),
    ],
  };
}
