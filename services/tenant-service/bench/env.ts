/** A benchmark's numeric setting from the environment. A typo would otherwise run a benchmark of NaN seconds and print nonsense. */
export function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive integer (got "${raw}"); unset it for the default, ${fallback}`);
    process.exit(2);
  }
  return value;
}
