/**
 * A small line of values as inline SVG (no chart library for a 100 × 24 picture). Missing values break the
 * line. Decorative next to the number it illustrates unless `label` says what it shows.
 */
export function Sparkline(props: {
  values: readonly (number | null)[];
  width?: number;
  height?: number;
  label?: string;
}) {
  const width = props.width ?? 120;
  const height = props.height ?? 28;
  const nums = props.values.filter((v): v is number => typeof v === 'number');
  const max = Math.max(1, ...nums);
  const min = Math.min(0, ...nums);
  const n = props.values.length;
  const x = (i: number) => (n <= 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1);
  const y = (v: number) => height - 1 - ((v - min) / (max - min || 1)) * (height - 2);
  let d = '';
  let pen = false;
  props.values.forEach((v, i) => {
    if (typeof v !== 'number') {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return (
    <svg
      class="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role={props.label ? 'img' : undefined}
      aria-label={props.label}
      aria-hidden={props.label ? undefined : 'true'}
      focusable="false"
    >
      <path d={d} fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round" />
    </svg>
  );
}
