/**
 * Schema validation (protocol §2.2, §2.3): every JSON Schema in the schema directory
 * is read and compiled once, at start; a request only runs compiled code.
 * Pure core: the only I/O is reading the schema files in `createSchemaSet`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { ValidationIssue } from '../errors.js';
import { isRfc3339DateTime } from './formats.js';
import { parseStrictJson } from './strict-json.js';

export { parseStrictJson, parseStrictJsonBytes, MAX_JSON_DEPTH } from './strict-json.js';
export { isRfc3339DateTime } from './formats.js';

/** File name of the envelope schema inside the schema directory. */
export const ENVELOPE_SCHEMA_FILE = 'envelope.schema.json';
const SCHEMA_FILE_SUFFIX = '.schema.json';

export interface SchemaSet {
  /** Validates a parsed envelope and its body. `null` when valid; otherwise the issues (no values echoed). */
  validateEnvelope(value: unknown): ValidationIssue[] | null;
  /**
   * Validates `value` against another schema of the set, by file name
   * (e.g. `registry.schema.json`). Throws if there is no such schema.
   */
  validate(fileName: string, value: unknown): ValidationIssue[] | null;
  /** The raw schema documents, by file name (for the OpenAPI generator). Deep copies. */
  documents(): Record<string, object>;
}

/** protocol §4: at most this many schema failures are reported. */
export const MAX_ISSUES = 20;

function newAjv(allErrors: boolean): Ajv2020.default {
  const ajv = new Ajv2020.default({
    strict: true,
    allErrors,
    messages: true,
    verbose: false, // keeps instance data out of error objects
  });
  // Full-mode formats (date: real calendar dates); date-time is ours, stricter (formats.ts).
  addFormats.default(ajv, { mode: 'full' });
  ajv.addFormat('date-time', { type: 'string', validate: isRfc3339DateTime });
  return ajv;
}

/**
 * Reads every `*.schema.json` in `schemaDir`, compiles each with Ajv (JSON Schema
 * 2020-12, strict mode; a fast first-error validator and an allErrors one for
 * documents that already failed) and returns the validators. Throws if
 * a file is not strict JSON, lacks an `$id`, or fails to compile.
 */
export function createSchemaSet(schemaDir: string): SchemaSet {
  const files = readdirSync(schemaDir)
    .filter((f) => f.endsWith(SCHEMA_FILE_SUFFIX))
    .sort();
  if (!files.includes(ENVELOPE_SCHEMA_FILE)) {
    throw new Error(`schema directory ${schemaDir} has no ${ENVELOPE_SCHEMA_FILE}`);
  }

  const raw: Record<string, string> = {};
  // ajv docs/security.md: no allErrors on untrusted input. The fast validator runs
  // first; only a document that already failed (and is bounded by the body limit and
  // the schemas' array bounds) runs again with allErrors, to report what to fix.
  const fast = newAjv(false);
  const thorough = newAjv(true);

  const ids = new Map<string, string>();
  for (const file of files) {
    const text = readFileSync(join(schemaDir, file), 'utf8');
    let doc: unknown;
    try {
      doc = parseStrictJson(text);
    } catch (cause) {
      throw new Error(`schema ${file} is not valid JSON`, { cause });
    }
    const id = typeof doc === 'object' && doc !== null ? (doc as { $id?: unknown }).$id : undefined;
    if (typeof id !== 'string') throw new Error(`schema ${file} has no $id`);
    raw[file] = text;
    ids.set(file, id);
    fast.addSchema(doc as object);
    thorough.addSchema(structuredClone(doc) as object);
  }

  const validators = new Map<string, { fast: ValidateFunction; all: ValidateFunction }>();
  for (const [file, id] of ids) {
    let pair: { fast: ValidateFunction | undefined; all: ValidateFunction | undefined };
    try {
      pair = { fast: fast.getSchema(id), all: thorough.getSchema(id) };
    } catch (cause) {
      throw new Error(`schema ${file} does not compile`, { cause });
    }
    if (pair.fast === undefined || pair.all === undefined)
      throw new Error(`schema ${file} does not compile`);
    validators.set(file, { fast: pair.fast, all: pair.all });
  }
  const envelope = validators.get(ENVELOPE_SCHEMA_FILE)!;

  const run = (
    fn: { fast: ValidateFunction; all: ValidateFunction },
    value: unknown,
  ): ValidationIssue[] | null => {
    if (fn.fast(value)) return null;
    // The thorough pass must fail too; if it somehow did not, report the fast errors.
    const errors = fn.all(value) ? fn.fast.errors : fn.all.errors;
    return toIssues(errors ?? []).slice(0, MAX_ISSUES);
  };

  return {
    validateEnvelope: (value) => run(envelope, value),
    validate(fileName, value) {
      const fn = validators.get(fileName);
      if (fn === undefined) throw new Error(`no schema named ${fileName}`);
      return run(fn, value);
    },
    documents() {
      const out: Record<string, object> = {};
      for (const file of files) out[file] = JSON.parse(raw[file] as string) as object;
      return out;
    },
  };
}

/** JSON Pointer escaping (RFC 6901 §4). */
function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Maps Ajv errors to protocol §4 `errors`. Paths are JSON Pointers into the
 * envelope; a missing member's path and an unknown member's path name the member
 * itself, so the sender sees what to add or remove. `enum` failures list the
 * allowed values (from the schema, never from the document). The `if` wrapper
 * error that follows a failed `then` is dropped; duplicates are reported once.
 */
export function toIssues(errors: readonly ErrorObject[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if' && errors.length > 1) continue;
    let path = e.instancePath;
    const params = e.params as {
      missingProperty?: unknown;
      additionalProperty?: unknown;
      allowedValues?: unknown;
      allowedValue?: unknown;
    };
    if (e.keyword === 'required' && typeof params.missingProperty === 'string')
      path = `${path}/${escapePointer(params.missingProperty)}`;
    if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string')
      path = `${path}/${escapePointer(params.additionalProperty)}`;
    const issue: ValidationIssue = {
      path,
      keyword: e.keyword,
      message: e.message ?? `failed ${e.keyword}`,
    };
    if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      issue.allowedValues = params.allowedValues;
      issue.message = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    if (e.keyword === 'const' && params.allowedValue !== undefined) {
      issue.allowedValues = [params.allowedValue];
    }
    // A root-level failure has the empty pointer (RFC 6901 §5).
    const key = `${issue.path}\u0000${issue.keyword}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}
