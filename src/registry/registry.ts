/** The registry of agencies and agreements (protocol §1.3). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ConfigError } from '../errors.js';
import type { MessageType } from '../envelope/types.js';

/** The variable protocol §8 names for the registry file; every registry error names it. */
export const REGISTRY_VARIABLE = 'CASEBRIDGE_REGISTRY';
export const REGISTRY_SCHEMA_FILE = 'registry.schema.json';

export interface Agency {
  readonly id: string;
  readonly country: string;
  readonly name: string;
}

export interface Agreement {
  readonly id: string;
  readonly parties: readonly string[];
  readonly types: readonly MessageType[];
  /** Inclusive. */
  readonly validFrom: Date;
  /** Exclusive. */
  readonly validUntil: Date;
}

export interface Registry {
  readonly gatewayId: string;
  readonly agencies: readonly Agency[];
  readonly agreements: readonly Agreement[];
  hasAgency(id: string): boolean;
  agency(id: string): Agency | undefined;
  /** True when an agreement lists both parties and `type`, and `at` ∈ [validFrom, validUntil). */
  permits(from: string, to: string, type: string, at: Date): boolean;
}

interface RegistryJson {
  gateway: { id: string };
  agencies: Agency[];
  agreements: Array<{
    id: string;
    parties: string[];
    types: MessageType[];
    validFrom: string;
    validUntil: string;
  }>;
}

/** Compiles the registry schema once (Ajv 2020-12, strict, first error only). */
export function compileRegistrySchema(schema: object): ValidateFunction {
  // ajv and ajv-formats are CommonJS: under NodeNext their exports sit on `.default`.
  const ajv = new Ajv2020.default({ strict: true, allErrors: false });
  addFormats.default(ajv, { mode: 'full' });
  return ajv.compile(schema);
}

function fail(reason: string, cause?: unknown): ConfigError {
  return new ConfigError(REGISTRY_VARIABLE, reason, cause === undefined ? undefined : { cause });
}

/** Parses and checks registry JSON; throws ConfigError('CASEBRIDGE_REGISTRY', …). */
export function parseRegistry(text: string, validate: ValidateFunction): Registry {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail('is not JSON', e);
  }
  if (!validate(json)) {
    const err = validate.errors?.[0];
    const where = err?.instancePath || '/';
    throw fail(`${where} ${err?.message ?? 'is invalid'} (${err?.keyword ?? 'schema'})`);
  }
  const doc = json as RegistryJson;

  const agencies = new Map<string, Agency>();
  for (const a of doc.agencies) {
    if (agencies.has(a.id)) throw fail(`agency ${a.id} is listed twice`);
    agencies.set(a.id, Object.freeze({ id: a.id, country: a.country, name: a.name }));
  }
  const gatewayId = doc.gateway.id;
  if (agencies.has(gatewayId)) throw fail(`gateway id ${gatewayId} is also an agency id`);

  const ids = new Set<string>();
  const agreements: Agreement[] = doc.agreements.map((g) => {
    if (ids.has(g.id)) throw fail(`agreement ${g.id} is listed twice`);
    ids.add(g.id);
    for (const p of g.parties) {
      if (!agencies.has(p)) throw fail(`agreement ${g.id} names unregistered agency ${p}`);
    }
    // uniqueItems already refuses a party twice; kept explicit as it is the rule that matters.
    if (new Set(g.parties).size !== g.parties.length)
      throw fail(`agreement ${g.id} lists a party with itself`);
    const validFrom = new Date(g.validFrom);
    const validUntil = new Date(g.validUntil);
    if (!(validFrom.getTime() < validUntil.getTime()))
      throw fail(`agreement ${g.id} ends before it starts`);
    return Object.freeze({
      id: g.id,
      parties: Object.freeze([...g.parties]),
      types: Object.freeze([...g.types]),
      validFrom,
      validUntil,
    });
  });

  const list = Object.freeze([...agencies.values()]);
  return Object.freeze({
    gatewayId,
    agencies: list,
    agreements: Object.freeze(agreements),
    hasAgency: (id: string) => agencies.has(id),
    agency: (id: string) => agencies.get(id),
    permits(from: string, to: string, type: string, at: Date): boolean {
      if (from === to) return false;
      const t = at.getTime();
      return agreements.some(
        (g) =>
          g.parties.includes(from) &&
          g.parties.includes(to) &&
          (g.types as readonly string[]).includes(type) &&
          g.validFrom.getTime() <= t &&
          t < g.validUntil.getTime(),
      );
    },
  });
}

/** Reads `registry.schema.json` from `schemaDir`, then parses `text`. */
export function loadRegistry(text: string, schemaDir: string): Registry {
  let schema: object;
  try {
    schema = JSON.parse(readFileSync(join(schemaDir, REGISTRY_SCHEMA_FILE), 'utf8')) as object;
  } catch (e) {
    throw fail(`cannot read ${REGISTRY_SCHEMA_FILE} from ${schemaDir}`, e);
  }
  return parseRegistry(text, compileRegistrySchema(schema));
}
