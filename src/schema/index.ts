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

/**
 * Reads every `*.schema.json` in `schemaDir`, compiles each with Ajv (JSON Schema
 * 2020-12, strict mode, first error only) and returns the validators. Throws if
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
  const ajv = new Ajv2020.default({
    strict: true,
    allErrors: false, // ajv docs/security.md: no allErrors on untrusted input
    messages: true,
    verbose: false, // keeps instance data out of error objects
  });
  // Full-mode formats (date: real calendar dates); date-time is ours, stricter (formats.ts).
  addFormats.default(ajv, { mode: 'full' });
  ajv.addFormat('date-time', { type: 'string', validate: isRfc3339DateTime });

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
    ajv.addSchema(doc as object);
  }

  const validators = new Map<string, ValidateFunction>();
  for (const [file, id] of ids) {
    let fn: ValidateFunction | undefined;
    try {
      fn = ajv.getSchema(id);
    } catch (cause) {
      throw new Error(`schema ${file} does not compile`, { cause });
    }
    if (fn === undefined) throw new Error(`schema ${file} does not compile`);
    validators.set(file, fn);
  }
  const envelope = validators.get(ENVELOPE_SCHEMA_FILE) as ValidateFunction;

  const run = (fn: ValidateFunction, value: unknown): ValidationIssue[] | null =>
    fn(value) ? null : toIssues(fn.errors ?? []);

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
 * envelope; a missing member's path names the member (its name comes from the
 * schema). The name of an unknown member is NOT echoed: it comes from the
 * sender's document, so the path names the object that holds it.
 * The `if` wrapper error that follows a failed `then` is dropped.
 */
export function toIssues(errors: readonly ErrorObject[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const e of errors) {
    if (e.keyword === 'if' && errors.length > 1) continue;
    let path = e.instancePath;
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty?: unknown }).missingProperty;
      if (typeof missing === 'string') path = `${path}/${escapePointer(missing)}`;
    }
    // A root-level failure has the empty pointer (RFC 6901 §5).
    issues.push({ path, keyword: e.keyword, message: e.message ?? `failed ${e.keyword}` });
  }
  return issues;
}
