/**
 * Where a tenant export's NDJSON objects are kept (README "Export"). Both stores take a stream and give one back, so
 * neither holds an object in memory:
 *
 * - `local`: files under EXPORT_DIR, for development. The service streams a file back to the client itself.
 * - `gcs`: a Cloud Storage bucket (staging, production). The worker streams each object up; the service answers with
 *   a V4 signed URL that expires (EXPORT_URL_TTL_SECONDS), so the bytes never pass through it. On GKE the service has
 *   no key file: the library signs through the IAM Credentials API's signBlob as the pod's own service account
 *   (Workload Identity), which the stack allows on that account only (infra/src/constructs/exports-bucket.ts).
 *
 * Keys are `tenants/<tenant id>/exports/<export id>/<table>.ndjson`: a tenant's objects share one prefix, which the
 * erasure removes whole (worker/erasure.ts).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Storage, type StorageOptions } from "@google-cloud/storage";

export type ExportStoreKind = "local" | "gcs";

export interface ExportStore {
  readonly kind: ExportStoreKind;
  /** Writes `body` to `key` whole or not at all (a retried job overwrites); resolves once it is stored. */
  write(key: string, body: Readable, contentType: string): Promise<void>;
  /** The object's bytes, streamed; undefined when there is no such object. */
  read(key: string): Promise<Readable | undefined>;
  /** A URL that reads the object without credentials until `expiresAt` (gcs); undefined where the store has none (local). */
  signedUrl(key: string, expiresAt: Date): Promise<string | undefined>;
  /** Removes every object under `prefix` (a tenant's, on erasure). */
  deletePrefix(prefix: string): Promise<void>;
}

export interface ExportStoreConfig {
  readonly EXPORT_STORE: ExportStoreKind;
  readonly EXPORT_DIR: string;
  readonly EXPORT_BUCKET?: string;
  readonly EXPORT_GCS_ENDPOINT?: string;
}

const KEY = /^[a-z0-9][a-z0-9/_.-]{0,500}$/;

function checkKey(key: string): string {
  if (!KEY.test(key) || key.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw new Error(`refusing export object key "${key}": not a relative path of lowercase segments`);
  }
  return key;
}

export const tenantPrefix = (tenantId: string): string => `tenants/${tenantId}/`;
/** One export's objects, which a job whose record vanished under it (the tenant erased meanwhile) removes. */
export const exportPrefix = (tenantId: string, exportId: string): string => `${tenantPrefix(tenantId)}exports/${exportId}/`;
export const exportObjectKey = (tenantId: string, exportId: string, table: string): string => checkKey(`${exportPrefix(tenantId, exportId)}${table}.ndjson`);

/** Files under `root`: written to a temporary name beside the target and renamed in, so a reader never sees half. */
export function localExportStore(root: string): ExportStore {
  const base = resolve(root);
  const pathOf = (key: string) => {
    const path = resolve(base, checkKey(key.replace(/\/$/, "")));
    if (!path.startsWith(base + sep)) throw new Error(`refusing export object key "${key}": outside ${base}`);
    return path;
  };
  return {
    kind: "local",
    async write(key, body) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const partial = `${path}.${process.pid}.${Date.now()}.partial`;
      try {
        await pipeline(body, createWriteStream(partial, { mode: 0o600 }));
        await rename(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },
    async read(key) {
      const path = pathOf(key);
      const found = await stat(path).then((s) => s.isFile(), () => false);
      return found ? createReadStream(path) : undefined;
    },
    async signedUrl() {
      return undefined;
    },
    async deletePrefix(prefix) {
      await rm(pathOf(prefix), { recursive: true, force: true });
    },
  };
}

export interface GcsExportStoreOptions {
  readonly bucket: string;
  /** Another endpoint than Google's (fake-gcs-server in tests). */
  readonly apiEndpoint?: string;
  /** Explicit credentials (tests sign with a key of their own); unset: Application Default Credentials. */
  readonly credentials?: StorageOptions["credentials"];
  readonly projectId?: string;
  /**
   * Where signBlob is called when there is no key (`.../serviceAccounts/`, the account and `:signBlob` appended):
   * tests point it at an IAM of their own. Unset: Google's IAM Credentials API, as on GKE.
   */
  readonly signingEndpoint?: string;
}

/** A Cloud Storage bucket through @google-cloud/storage. */
export function gcsExportStore(options: GcsExportStoreOptions): ExportStore {
  const storage = new Storage({
    ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.projectId ? { projectId: options.projectId } : {}),
  });
  const bucket = storage.bucket(options.bucket);
  return {
    kind: "gcs",
    async write(key, body, contentType) {
      // A resumable upload streams in chunks; a crc32c of the whole object is checked by the server at the end, so a
      // corrupted or truncated upload fails instead of leaving a wrong object.
      await pipeline(body, bucket.file(checkKey(key)).createWriteStream({ resumable: true, contentType, metadata: { contentType } }));
    },
    async read(key) {
      const file = bucket.file(checkKey(key));
      const [exists] = await file.exists();
      return exists ? file.createReadStream() : undefined;
    },
    async signedUrl(key, expiresAt) {
      const [url] = await bucket.file(checkKey(key)).getSignedUrl({
        version: "v4",
        action: "read",
        expires: expiresAt,
        ...(options.signingEndpoint ? { signingEndpoint: options.signingEndpoint } : {}),
      });
      return url;
    },
    async deletePrefix(prefix) {
      await bucket.deleteFiles({ prefix: checkKey(prefix.replace(/\/$/, "")) + "/", force: true });
    },
  };
}

/** The store EXPORT_STORE names. */
export function createExportStore(config: ExportStoreConfig): ExportStore {
  if (config.EXPORT_STORE === "gcs") {
    if (!config.EXPORT_BUCKET) throw new Error("EXPORT_STORE=gcs needs EXPORT_BUCKET");
    return gcsExportStore({ bucket: config.EXPORT_BUCKET, apiEndpoint: config.EXPORT_GCS_ENDPOINT });
  }
  return localExportStore(config.EXPORT_DIR);
}
