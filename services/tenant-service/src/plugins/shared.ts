import type { FastifyPluginAsync, FastifyPluginOptions } from "fastify";

/**
 * Marks a plugin as acting on the scope that registers it rather than on a child scope of its own, as
 * fastify-plugin does (with Fastify's own symbols): the error handler, hooks and routes' checks these plugins add
 * are meant for the app, or the API scope, they are registered in.
 */
export function shared<Options extends FastifyPluginOptions>(name: string, plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  return Object.assign(plugin, { [Symbol.for("skip-override")]: true, [Symbol.for("fastify.display-name")]: name });
}
