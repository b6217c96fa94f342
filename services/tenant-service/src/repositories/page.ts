import { encodeCursor } from "../cursor.js";

/** One page of a list, newest first, and the cursor of the next page (null on the last one). */
export interface Page<T> {
  readonly data: T[];
  readonly nextCursor: string | null;
}

/** Where the next page starts: the (created_at, id) of the last row of the previous one, from decodeCursor. */
export interface After {
  readonly createdAt: string;
  readonly id: string;
}

/**
 * The select-list entry a list query adds for toPage: `column` in UTC to the microsecond, as text. A Date keeps
 * only milliseconds, and a cursor made from one would skip the rows of the same millisecond.
 */
export const cursorColumn = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`;

/** Rows read with LIMIT limit + 1 and a cursorColumn: the extra row says there is a next page, and is not returned. */
export function toPage<T>(rows: Record<string, unknown>[], limit: number, map: (row: Record<string, unknown>) => T): Page<T> {
  const more = rows.length > limit;
  const visible = more ? rows.slice(0, limit) : rows;
  const last = visible.at(-1);
  return { data: visible.map(map), nextCursor: more && last ? encodeCursor(last.cursor_at as string, last.id as string) : null };
}

/**
 * The keyset condition of the page after `after`, for a list ordered by (`column` DESC, id DESC): appended to
 * `where`, its two values to `params`. Nothing when it is the first page.
 */
export function keysetAfter(column: string, after: After | undefined, where: string[], params: unknown[]): void {
  if (!after) return;
  params.push(after.createdAt, after.id);
  where.push(`(${column}, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
}
