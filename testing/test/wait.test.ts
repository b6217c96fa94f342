import { describe, expect, it } from "vitest";
import { waitFor } from "../src/index.js";

describe("waitFor", () => {
  it("returns the probe's first value that is neither undefined nor false, trying again until then", async () => {
    let tries = 0;
    const value = await waitFor("the third try", () => (++tries < 3 ? undefined : { tries }), { intervalMs: 1 });
    expect(value).toEqual({ tries: 3 });
    expect(await waitFor("a true", async () => true)).toBe(true);
    // 0 and "" are values, not "not yet".
    expect(await waitFor("a zero", () => 0)).toBe(0);
  });

  it("gives up after its timeout, naming what it waited for and what the test saw last", async () => {
    let tries = 0;
    const started = Date.now();
    const failure = await waitFor("the receiver's answer", () => (tries++, false), { timeoutMs: 120, intervalMs: 10, detail: () => `${tries} tries` }).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^timed out after 120 ms waiting for the receiver's answer: \d+ tries$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(120);
    expect(tries).toBeGreaterThan(2);
  });

  it("ends with the probe's own error", async () => {
    await expect(waitFor("a broken probe", () => Promise.reject(new Error("connection refused")))).rejects.toThrow("connection refused");
  });
});
