import { describe, expect, it } from "vitest";
import { DatabaseEnvError, databasesFromEnv } from "../src/databases.js";

describe("the databases named in the environment", () => {
  it("names the home database and each DATABASE_URL_<NAME>, with their secret files", () => {
    const found = databasesFromEnv({
      DATABASE_URL: "postgresql://app@home/platform",
      DATABASE_PASSWORD_FILE: "/secrets/home",
      DATABASE_URL_CITUS: "postgresql://app@coordinator/platform",
      DATABASE_PASSWORD_FILE_CITUS: "/secrets/citus",
      DATABASE_CA_FILE_CITUS: "/ca/citus",
      DATABASE_URL_SPARE: "",
    });
    expect(found).toEqual([
      { name: "home", url: "postgresql://app@home/platform", passwordFile: "/secrets/home" },
      { name: "citus", url: "postgresql://app@coordinator/platform", passwordFile: "/secrets/citus", caFile: "/ca/citus" },
    ]);
  });

  it("refuses a name a placement could not hold, or the home name twice, saying how to rename", () => {
    expect(() => databasesFromEnv({ DATABASE_URL_HOME: "postgresql://x/y" })).toThrow(/and not "home"\); rename the variable/);
    expect(() => databasesFromEnv({ "DATABASE_URL_2ND": "postgresql://x/y" })).toThrow(DatabaseEnvError);
  });

  it("refuses a URL that is not postgresql://, naming the variable", () => {
    expect(() => databasesFromEnv({ DATABASE_URL_CITUS: "mysql://x/y" })).toThrow(/DATABASE_URL_CITUS must be a postgresql:\/\/ URL/);
  });
});
