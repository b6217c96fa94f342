import { badRequest } from "./errors.js";

/**
 * An opaque keyset cursor over (created_at DESC, id DESC): the last row's timestamp as PostgreSQL keeps it, to the
 * microsecond (see cursorColumn in repositories/page.ts), and its id. With only the milliseconds a Date keeps, the
 * next page would skip every row created in the same millisecond as the last one shown.
 */
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
}

// What encodeCursor writes (cursors written before it kept microseconds have three digits).
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A real UTC instant PostgreSQL can store: any other string would fail in the query, as a 500. */
function isTimestamp(text: string): boolean {
  const match = TIMESTAMP.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return year >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [unknown, unknown];
    if (typeof createdAt !== "string" || !isTimestamp(createdAt) || typeof id !== "string" || !UUID.test(id)) throw new Error();
    return { createdAt, id };
  } catch {
    throw badRequest("cursor is not one this API returned: pass the nextCursor of the previous page", "invalid_cursor");
  }
}
