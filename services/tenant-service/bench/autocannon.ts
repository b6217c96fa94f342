// Child process of bench/load.ts when wrk is not installed: drives HTTP load with autocannon in its own process so
// the load generator does not share the service's event loop. Prints autocannon's result as JSON.
import autocannon from "autocannon";
import type { LoadOptions, LoadResult } from "./load.js";

const { url, connections, duration, requests } = JSON.parse(process.argv[2]!) as LoadOptions;

let next = 0;
const result = await autocannon({
  url,
  connections,
  duration,
  requests: [
    {
      setupRequest: (req) => {
        const r = requests[next++ % requests.length]!;
        return { ...req, method: r.method as "GET", path: r.path, headers: r.headers, body: r.body };
      },
    },
  ],
});
const out: LoadResult = { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx, total: result.requests.total };
process.stdout.write(JSON.stringify(out));
