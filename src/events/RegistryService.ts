/**
 * The event registry a gateway runs with, as a service: built from its
 * config's `EVENT_TYPES_FILE` by the gateway's layer, so everything that asks
 * what kind a type is (the log, filters, drafts, `GET /event-types`) asks this
 * gateway's registry, not the process's.
 */
import { Context, Layer } from "effect"
import { builtinRegistry, type CustomType, EventRegistry } from "./registry.ts"

export class Registry extends Context.Service<Registry, EventRegistry>()("taskstream/Registry") {
  /** The registry of the built-ins and `custom`. */
  static readonly layerOf = (custom: ReadonlyMap<string, CustomType>) => Layer.succeed(Registry, new EventRegistry(custom))
  /** The built-ins only. */
  static readonly builtin = Layer.succeed(Registry, builtinRegistry)
}
