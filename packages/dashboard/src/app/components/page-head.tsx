import type { ComponentChildren } from 'preact';
import { formatTime } from '../format.js';
import type { View } from '../url.js';

/** The view's range in words: first day – last day · zone. */
export function rangeText(view: View): string {
  return `${formatTime(view.from, view.tz, 'day')} – ${formatTime(view.to - 1, view.tz, 'day')} · ${view.tz}`;
}

/** A page's title and the line under it (by default the view's range); `children` sit beside them. */
export function PageHead(props: {
  title: ComponentChildren;
  view: View;
  sub?: ComponentChildren;
  children?: ComponentChildren;
}) {
  return (
    <div class="page-head">
      <div>
        <h1>{props.title}</h1>
        <p class="page-sub">{props.sub ?? rangeText(props.view)}</p>
      </div>
      {props.children}
    </div>
  );
}
