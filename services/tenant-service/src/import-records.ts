/**
 * An import body (NDJSON or CSV), streamed into records with their line numbers, without holding more than one
 * record at a time (README "Import"). A line that cannot be read is reported with its number and the reading goes
 * on; what a record must hold is judged by the route's schema, not here.
 */
import type { Readable } from "node:stream";
import { parse } from "csv-parse";

/** One record read from the body, or why its line could not be read. */
export type ImportLine = { readonly line: number; readonly record: Record<string, unknown> } | { readonly line: number; readonly error: string };

/** The longest line (NDJSON) or record (CSV) read: past it the line is refused, so one line cannot fill memory. */
export const MAX_RECORD_BYTES = 256 * 1024;

/** The CSV header's columns; a cell left empty is the same as the field left out. */
export const CSV_COLUMNS = ["type", "key", "email", "displayName", "role", "ownerKey", "ownerId", "title", "body", "tags"] as const;

/** NDJSON: one JSON object a line; blank lines are skipped. */
export async function* ndjsonLines(body: Readable): AsyncGenerator<ImportLine> {
  let line = 0;
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let tooLong = false;
  const finish = function* (bytes: Buffer): Generator<ImportLine> {
    line++;
    if (tooLong) {
      tooLong = false;
      yield { line, error: `longer than ${MAX_RECORD_BYTES} bytes` };
      return;
    }
    const text = bytes.toString("utf8").trim();
    if (text === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield { line, error: `not JSON: ${(error as Error).message}` };
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) yield { line, error: "not a JSON object" };
    else yield { line, record: value as Record<string, unknown> };
  };
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      const whole = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      if (partialBytes + piece.length > MAX_RECORD_BYTES) tooLong = true;
      partial = [];
      partialBytes = 0;
      yield* finish(whole);
      start = newline + 1;
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      partialBytes += rest.length;
      // Past the bound the line's bytes are dropped, and only its length counted, until its newline.
      if (partialBytes > MAX_RECORD_BYTES) {
        tooLong = true;
        partial = [];
      } else partial.push(Buffer.from(rest));
    }
  }
  if (partialBytes > 0 || partial.length > 0 || tooLong) yield* finish(Buffer.concat(partial));
}

/**
 * CSV with a header row naming its columns (CSV_COLUMNS, in any order, unknown ones refused); `tags` is one cell of
 * tags separated by `;`. The line given is the one the record ends on (a quoted cell may span lines).
 */
export async function* csvLines(body: Readable): AsyncGenerator<ImportLine> {
  const skipped: ImportLine[] = [];
  const parser = body.pipe(
    parse({
      bom: true,
      info: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      max_record_size: MAX_RECORD_BYTES,
      columns: (header: string[]) => {
        const unknown = header.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
        if (unknown.length > 0) throw new Error(`unknown CSV column(s) ${unknown.map((c) => JSON.stringify(c)).join(", ")}: the header names columns among ${CSV_COLUMNS.join(", ")}`);
        if (!header.includes("type")) throw new Error(`the CSV header must name a "type" column (user or item): columns among ${CSV_COLUMNS.join(", ")}`);
        return header;
      },
    }),
  );
  parser.on("skip", (error: Error & { lines?: number }) => skipped.push({ line: error.lines ?? 0, error: error.message }));
  body.on("error", (error) => parser.destroy(error));
  for await (const { info, record } of parser as AsyncIterable<{ info: { lines: number }; record: Record<string, string> }>) {
    while (skipped.length > 0) yield skipped.shift()!;
    const fields: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(record)) {
      if (value === "") continue;
      fields[column] = column === "tags" ? value.split(";").map((t) => t.trim()).filter((t) => t !== "") : value;
    }
    yield { line: info.lines, record: fields };
  }
  while (skipped.length > 0) yield skipped.shift()!;
}
