/**
 * Grouped bars over time as SVG: per bucket, one bar per series side by side (uPlot's bars overlap when
 * there are several series; a breakdown is several). Colours are the stylesheet's series classes, so the
 * chart follows light and dark without redrawing; the width follows the card. Each bar has a <title>
 * (shown on hover); the figure is one image to assistive technology, its numbers in the table view and
 * the CSV.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatCompact, formatNumber } from '../../format.js';

export interface BarSeries {
  label: string;
  values: readonly (number | null)[];
}

const M = { top: 10, right: 8, bottom: 26, left: 52 };

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((f) => f * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return out;
}

export function BarChart(props: {
  label: string;
  times: readonly number[];
  series: readonly BarSeries[];
  /** Writes a bucket's start for an axis label and a title. */
  timeLabel: (t: number) => string;
  format?: (v: number | null) => string;
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  const height = props.height ?? 260;
  const format = props.format ?? formatNumber;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setWidth(el.clientWidth);
    const resize = new ResizeObserver(() => setWidth(el.clientWidth));
    resize.observe(el);
    return () => resize.disconnect();
  }, []);

  const nums = props.series.flatMap((s) => s.values.filter((v): v is number => typeof v === 'number'));
  const lo = Math.min(0, ...nums);
  const hiRaw = Math.max(0, ...nums);
  const hi = hiRaw === lo ? lo + 1 : hiRaw + (hiRaw - lo) * 0.08;
  const plotW = Math.max(1, width - M.left - M.right);
  const plotH = height - M.top - M.bottom;
  const y = (v: number) => M.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const n = props.times.length;
  const slot = plotW / Math.max(1, n);
  const group = slot * 0.8;
  const bar = group / Math.max(1, props.series.length);
  // Labels about every 90 px.
  const every = Math.max(1, Math.ceil(90 / slot));

  return (
    <div class="bar-chart">
      <div class="bar-chart-plot" ref={box}>
        {width > 0 && (
          <svg
            width={width}
            height={height}
            viewBox={`0 0 ${width} ${height}`}
            role="img"
            aria-label={props.label}
            data-drawn="true"
            focusable="false"
          >
            {ticks(lo, hi).map((t) => (
              <g key={t}>
                <line class="bar-chart-grid" x1={M.left} x2={width - M.right} y1={y(t)} y2={y(t)} />
                <text class="bar-chart-axis" x={M.left - 6} y={y(t)} dy="0.32em" text-anchor="end">
                  {formatCompact(t)}
                </text>
              </g>
            ))}
            {props.times.map((t, i) => {
              const x0 = M.left + i * slot + (slot - group) / 2;
              return (
                <g key={t}>
                  {props.series.map((s, k) => {
                    const v = s.values[i];
                    if (typeof v !== 'number') return null;
                    const top = y(Math.max(0, v));
                    const h = Math.max(v === 0 ? 0 : 1, Math.abs(y(v) - y(0)));
                    return (
                      <rect
                        key={k}
                        class={`qb-s${(k % 6) + 1}`}
                        x={x0 + k * bar}
                        y={top}
                        width={Math.max(1, bar - (bar > 4 ? 1 : 0))}
                        height={h}
                      >
                        <title>{`${s.label}, ${props.timeLabel(t)}: ${format(v)}`}</title>
                      </rect>
                    );
                  })}
                  {i % every === 0 && (
                    <text class="bar-chart-axis" x={M.left + i * slot + slot / 2} y={height - 8} text-anchor="middle">
                      {props.timeLabel(t)}
                    </text>
                  )}
                </g>
              );
            })}
            <line class="bar-chart-base" x1={M.left} x2={width - M.right} y1={y(0)} y2={y(0)} />
          </svg>
        )}
      </div>
      <Legend labels={props.series.map((s) => s.label)} />
    </div>
  );
}

/** The series' colours and names, under a chart. */
export function Legend({ labels }: { labels: readonly string[] }) {
  return (
    <ul class="legend" aria-label="Legend">
      {labels.map((l, k) => (
        <li key={k}>
          <svg width="10" height="10" aria-hidden="true" focusable="false">
            <rect width="10" height="10" rx="2" class={`qb-s${(k % 6) + 1}`} />
          </svg>
          {l}
        </li>
      ))}
    </ul>
  );
}
