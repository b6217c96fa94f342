/**
 * The Citus suites' check of CITUS_URL's cluster (src/testing.ts): a node configured otherwise than the platform's
 * nodes are is named with each setting it lacks, before a suite runs for minutes and fails for it. The same check
 * runs against the real cluster in every suite that prepares one (prepareCitusDatabase); this covers its verdicts.
 */
import { CITUS_OUTPUT_PLUGIN_LIBRARIES, CITUS_SETTINGS } from "@platform/config";
import { describe, expect, it } from "vitest";
import { settingsMismatches } from "../src/testing.js";

const platform = { wal_level: "logical", ...Object.fromEntries(Object.entries(CITUS_SETTINGS).map(([k, v]) => [k, String(v)])), output_plugin_libraries: CITUS_OUTPUT_PLUGIN_LIBRARIES };

describe("the settings a cluster for the Citus suites must have", () => {
  it("passes nodes set as the platform sets them, in any order of plugins, and a server that predates output_plugin_libraries", () => {
    expect(settingsMismatches([
      { node: "the coordinator", settings: platform },
      { node: "w1:5432", settings: { ...platform, output_plugin_libraries: "citus,pgoutput,test_decoding" } },
      { node: "w2:5432", settings: { ...platform, output_plugin_libraries: null } },
    ])).toEqual([]);
  });

  it("names each node and each setting it lacks, with the value it has and the platform's", () => {
    expect(settingsMismatches([
      { node: "the coordinator", settings: platform },
      { node: "w1:5432", settings: { ...platform, "citus.stat_tenants_track": "none", output_plugin_libraries: "pgoutput, test_decoding" } },
      { node: "w2:5432", settings: { ...platform, wal_level: "replica", "citus.propagate_set_commands": "none" } },
    ])).toEqual([
      "w1:5432: citus.stat_tenants_track = none, the platform's all",
      "w1:5432: output_plugin_libraries = pgoutput, test_decoding, the platform's pgoutput, citus",
      "w2:5432: wal_level = replica, the platform's logical",
      "w2:5432: citus.propagate_set_commands = none, the platform's local",
    ]);
  });
});
