/**
 * The formula grammar of trends (`B / A`, `(A + B) * 100 / C`): series letters A–Z, non-negative decimal
 * numbers, + - * / and parentheses, unary minus. Anything else is refused, so a formula can never carry
 * text an engine might splice somewhere; engines evaluate the AST over the series' values.
 *
 *   expr   := term (('+' | '-') term)*
 *   term   := unary (('*' | '/') unary)*
 *   unary  := '-' unary | atom
 *   atom   := LETTER | NUMBER | '(' expr ')'
 */
export type FormulaNode =
  | { type: 'series'; index: number }
  | { type: 'number'; value: number }
  | { type: 'neg'; arg: FormulaNode }
  | { type: 'binary'; op: '+' | '-' | '*' | '/'; left: FormulaNode; right: FormulaNode };

export type FormulaResult = { ok: true; ast: FormulaNode; series: number[] } | { ok: false; message: string };

const MAX_LENGTH = 200;
const MAX_DEPTH = 32;

type Token = { kind: 'letter' | 'number' | 'op'; text: string; at: number };

function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ') {
      i++;
    } else if (c >= 'A' && c <= 'Z') {
      tokens.push({ kind: 'letter', text: c, at: i++ });
    } else if ((c >= '0' && c <= '9') || c === '.') {
      const m = /^[0-9]+(\.[0-9]+)?|^\.[0-9]+/.exec(text.slice(i));
      if (!m) return `a malformed number at position ${i + 1}`;
      tokens.push({ kind: 'number', text: m[0], at: i });
      i += m[0].length;
    } else if ('+-*/()'.includes(c)) {
      tokens.push({ kind: 'op', text: c, at: i++ });
    } else {
      return `the character ${JSON.stringify(c)} at position ${i + 1}`;
    }
  }
  return tokens;
}

/** Parses a formula over `seriesCount` series (letters beyond it are refused). */
export function parseFormula(text: string, seriesCount: number): FormulaResult {
  const allowed = `series letters A–${String.fromCharCode(64 + Math.max(1, Math.min(26, seriesCount)))}, numbers, + - * / and parentheses`;
  const fail = (what: string): FormulaResult => ({
    ok: false,
    message: `formula: unexpected ${what}; allowed: ${allowed}`,
  });
  if (text.length > MAX_LENGTH) return { ok: false, message: `formula: longer than ${MAX_LENGTH} characters` };
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return fail(tokens);
  let pos = 0;
  const used = new Set<number>();
  class Stop extends Error {}
  const stop = (what: string): never => {
    throw new Stop(what);
  };
  const describe = (t: Token | undefined): string => (t ? `"${t.text}" at position ${t.at + 1}` : 'end of formula');

  const expr = (depth: number): FormulaNode => {
    if (depth > MAX_DEPTH) stop('nesting deeper than 32 levels');
    let left = term(depth);
    for (let t = tokens[pos]; t?.kind === 'op' && (t.text === '+' || t.text === '-'); t = tokens[pos]) {
      pos++;
      left = { type: 'binary', op: t.text, left, right: term(depth) };
    }
    return left;
  };
  const term = (depth: number): FormulaNode => {
    let left = unary(depth);
    for (let t = tokens[pos]; t?.kind === 'op' && (t.text === '*' || t.text === '/'); t = tokens[pos]) {
      pos++;
      left = { type: 'binary', op: t.text, left, right: unary(depth) };
    }
    return left;
  };
  const unary = (depth: number): FormulaNode => {
    const t = tokens[pos];
    if (t?.kind === 'op' && t.text === '-') {
      pos++;
      return { type: 'neg', arg: unary(depth + 1) };
    }
    return atom(depth);
  };
  const atom = (depth: number): FormulaNode => {
    const t = tokens[pos];
    if (t?.kind === 'letter') {
      const index = t.text.charCodeAt(0) - 65;
      if (index >= seriesCount) stop(`series ${t.text} at position ${t.at + 1} (there are ${seriesCount} series)`);
      pos++;
      used.add(index);
      return { type: 'series', index };
    }
    if (t?.kind === 'number') {
      pos++;
      return { type: 'number', value: Number(t.text) };
    }
    if (t?.kind === 'op' && t.text === '(') {
      pos++;
      const inner = expr(depth + 1);
      const close = tokens[pos];
      if (close?.text !== ')') stop(describe(close));
      pos++;
      return inner;
    }
    return stop(describe(t));
  };

  try {
    const ast = expr(0);
    if (pos < tokens.length) stop(describe(tokens[pos]));
    if (used.size === 0) stop('formula without any series letter');
    return { ok: true, ast, series: [...used].sort((a, b) => a - b) };
  } catch (e) {
    if (e instanceof Stop) return fail(e.message);
    throw e;
  }
}
