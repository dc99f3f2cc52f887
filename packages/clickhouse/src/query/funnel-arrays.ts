/**
 * Running aggregates over a user's sorted arrays, in the array functions ClickHouse 18.16 has (no
 * arrayFold, arrayFill or window functions there). Each is a few passes over the array, linear in its
 * length: no lambda captures an array (ClickHouse copies a captured array once per element, which
 * would make a user with many events quadratic).
 *
 * The one trick: a running maximum from a running sum that never goes below zero. With z the running
 * maximum of w, z_i − w_i = max(z_{i−1} − w_i, 0) = max((z_{i−1} − w_{i−1}) + (w_{i−1} − w_i), 0): the
 * differences of w, negated, summed by arrayCumSumNonNegative, give z − w. Exact on Int64 while the
 * values' differences fit, which relative times (funnel-sql.ts keeps them under 2^50) do.
 *
 * Definitions are named. One used once is written into its user; one used more often becomes a column
 * of a subquery, computed once, in layers (each one layer after the latest it uses). An alias (`WITH
 * expr AS name`) would not do: it is substituted into every expression naming it, so the tree grows
 * exponentially with the steps, and both engines refuse it after a few (`AST is too big`).
 */

/** A definition's name: `_`, a hint, a number. */
const NAME = /\b_[a-z]+\d+\b/g;

const namesIn = (text: string): string[] => text.match(NAME) ?? [];

export class ArrayDefs {
  private readonly defs: { name: string; expr: string; column: boolean }[] = [];
  private seq = 0;

  private readonly byExpr = new Map<string, string>();

  /** Defines `expr` under a fresh name and returns the name (an expression defined before: its name). */
  def(expr: string, hint = 'a'): string {
    const known = this.byExpr.get(expr);
    if (known !== undefined) return known;
    const name = `_${hint}${this.seq++}`;
    this.defs.push({ name, expr, column: false });
    this.byExpr.set(expr, name);
    return name;
  }

  /** A definition that is always a column: one reading the source's columns, which later layers lack. */
  column(expr: string, hint = 'a'): string {
    const name = `_${hint}${this.seq++}`;
    this.defs.push({ name, expr, column: true });
    return name;
  }

  /**
   * `source` (a subquery or table) with the definitions `uses` (the outer query's expressions) needs
   * as columns, layer by layer; each layer passes on only the columns a later layer or `uses` names,
   * and the source's columns `keep`. Returns the FROM clause and `uses` with single-use definitions
   * written in.
   */
  from(source: string, uses: string, keep: readonly string[] = []): { from: string; uses: string } {
    const count = new Map<string, number>();
    for (const text of [uses, ...this.defs.map((d) => d.expr)]) {
      for (const n of namesIn(text)) count.set(n, (count.get(n) ?? 0) + 1);
    }
    // Written in creation order: a definition uses only earlier ones, already expanded.
    const inline = new Map<string, string>();
    const expand = (text: string) => text.replace(NAME, (n) => inline.get(n) ?? n);
    const layers: { name: string; expr: string }[][] = [];
    const depth = new Map<string, number>();
    for (const d of this.defs) {
      const used = count.get(d.name) ?? 0;
      if (used === 0) continue;
      const expr = expand(d.expr);
      if (used === 1 && !d.column) {
        inline.set(d.name, `(${expr})`);
        continue;
      }
      const layer = Math.max(0, ...namesIn(expr).map((n) => (depth.get(n) ?? -1) + 1));
      depth.set(d.name, layer);
      (layers[layer] ??= []).push({ name: d.name, expr });
    }
    const outer = expand(uses);
    let needed = new Set(namesIn(outer));
    const selects: string[] = [];
    for (let layer = layers.length - 1; layer >= 0; layer--) {
      const defs = layers[layer] ?? [];
      const own = new Set(defs.map((d) => d.name));
      const passed = [...needed].filter((n) => !own.has(n));
      selects.unshift([...keep, ...passed, ...defs.map((d) => `${d.expr} AS ${d.name}`)].join(',\n      '));
      needed = new Set([...passed, ...defs.flatMap((d) => namesIn(d.expr))]);
    }
    return { from: selects.reduce((inner, list) => `(SELECT ${list} FROM ${inner})`, source), uses: outer };
  }

  /**
   * The running maximum of Int64 array w, given as `negated` = −w (callers negate in the map that makes
   * w, which saves a pass): z = w + cumSumNonNegative(−diff(w)) = cumSumNonNegative(diff(−w)) − (−w).
   */
  cummaxOfNegated(negated: string): string {
    return this.def(
      `arrayMap((n, s) -> s - n, ${negated}, arrayCumSumNonNegative(arrayDifference(${negated})))`,
      'max',
    );
  }

  /** The running minimum of Int64 array w: −(running maximum of −w) = w − cumSumNonNegative(diff(w)). */
  cummin(w: string): string {
    return this.def(`arrayMap((a, s) -> a - s, ${w}, arrayCumSumNonNegative(arrayDifference(${w})))`, 'min');
  }

  /** The minimum of `w` over each element and all after it. */
  suffixMin(w: string): string {
    return this.def(`arrayReverse(${this.cummin(this.def(`arrayReverse(${w})`, 'rev'))})`, 'smin');
  }

  /** `a` shifted one place to the right, `fill` first (each element sees its predecessor). */
  shifted(a: string, fill: string): string {
    return this.def(`arrayPopBack(arrayPushFront(${a}, ${fill}))`, 'prev');
  }
}
