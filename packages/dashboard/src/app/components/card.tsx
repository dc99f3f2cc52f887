import type { ComponentChildren } from 'preact';
import type { Loaded } from '../api.js';
import { ErrorBox } from './error-box.js';

/**
 * A titled panel of a page: a heading, actions on the right (CSV, toggles), then its body. `state` (from
 * useQuery / useLoad) shows a loading line before the first answer and an ErrorBox on failure, so a card
 * never sits blank; `children` render once there is data.
 */
export function Card(props: {
  title: string;
  /** `data-card` attribute: tests and CSS find a card by it. */
  id?: string;
  actions?: ComponentChildren;
  state?: Pick<Loaded<unknown>, 'loading' | 'error' | 'reload'> & { data?: unknown };
  /** Spans the whole row of the page grid. */
  wide?: boolean;
  children?: ComponentChildren;
}) {
  const { state } = props;
  const headingId = props.id ? `card-${props.id}` : undefined;
  let body: ComponentChildren = props.children;
  if (state?.error) body = <ErrorBox error={state.error} onRetry={state.reload} />;
  else if (state && state.data === undefined) body = <p class="muted loading">Loading…</p>;
  return (
    <section
      class={`card${props.wide ? ' wide' : ''}`}
      data-card={props.id}
      aria-labelledby={headingId}
      aria-busy={state?.loading ? 'true' : 'false'}
    >
      <header class="card-head">
        <h2 id={headingId}>{props.title}</h2>
        {props.actions && <div class="card-actions">{props.actions}</div>}
      </header>
      <div class="card-body">{body}</div>
    </section>
  );
}
