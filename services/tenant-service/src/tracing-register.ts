/**
 * Loaded before the service's own modules: `node --import tsx --import ./src/tracing-register.ts src/server.ts`
 * (the package scripts and the image's entrypoint). It patches pg as it loads (tracing.ts says why this cannot wait
 * for server.ts); the tracer provider comes later, from the parsed config.
 *
 * Only whether an endpoint is set is read here: the value is validated with the rest of the config, which stops the
 * process if it is wrong. Without one nothing is patched and tracing costs nothing.
 */
import { enableInstrumentation } from "./tracing.js";

if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) enableInstrumentation();
