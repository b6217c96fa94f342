/** The vector selectors of a PromQL expression, for checking each against what a real Prometheus scraped. */

export interface Selector {
  /** The metric name. */
  readonly name: string;
  /** Label matchers as written, e.g. `job="citus-node",mountpoint="/var/lib/postgresql"`; empty when none. */
  readonly matchers: string;
  /** `name{matchers}`, as PromQL. */
  readonly text: string;
}

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "Inf", "NaN"]);

/**
 * Every `name` or `name{...}` that reads series: identifiers that are not a function or aggregation (followed by a
 * parenthesis), a keyword, a label in a grouping clause, a duration or part of a number.
 */
export function selectors(expr: string): Selector[] {
  const stripped = expr
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const found: Selector[] = [];
  for (const m of stripped.matchAll(/(?<![\w.:$"])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?/g)) {
    const name = m[1]!;
    if (KEYWORDS.has(name)) continue;
    if (!m[2] && stripped.slice(m.index! + m[0].length).trimStart().startsWith("(")) continue;
    const matchers = m[2] ? m[2].slice(1, -1).trim() : "";
    found.push({ name, matchers, text: matchers ? `${name}{${matchers}}` : name });
  }
  return found;
}

/** The selector with only its `job` matcher kept: whether the metric itself comes from the job the rule names. */
export function nameAndJob(s: Selector): string {
  const job = /\bjob\s*=\s*"[^"]*"/.exec(s.matchers)?.[0];
  return job ? `${s.name}{${job}}` : s.name;
}
