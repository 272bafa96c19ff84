/** Agencies and agreements (protocol §1.3). */
export {
  loadRegistry,
  parseRegistry,
  compileRegistrySchema,
  REGISTRY_VARIABLE,
  REGISTRY_SCHEMA_FILE,
  type Registry,
  type Agency,
  type Agreement,
} from './registry.js';
