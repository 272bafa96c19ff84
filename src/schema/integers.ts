/**
 * protocol §2.1: a member the schema types as integer is written as a plain
 * integer. JSON Schema's `integer` accepts any number with a zero fraction, so
 * `1.0`, `1e2` and `-0` pass Ajv; the strict decoder reports where such numbers
 * are, and this asks the schema itself whether each place is typed integer.
 */
import type { ValidationIssue } from '../errors.js';

type Validate = (value: unknown) => ValidationIssue[] | null;

function unescape(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Sets the value at a JSON Pointer (RFC 6901) inside a copy; false when there is none. */
function setAt(root: unknown, pointer: string, value: unknown): boolean {
  const tokens = pointer.split('/').slice(1).map(unescape);
  let cur: unknown = root;
  for (let i = 0; i < tokens.length; i++) {
    if (typeof cur !== 'object' || cur === null) return false;
    const t = tokens[i]!;
    const holder = cur as Record<string, unknown>;
    if (!Object.prototype.hasOwnProperty.call(holder, t)) return false;
    if (i === tokens.length - 1) holder[t] = value;
    else cur = holder[t];
  }
  return tokens.length > 0;
}

/**
 * The issues for `pointers` (numbers not written as plain integers) that the
 * schema types as integer: a value the schema accepted, with one such number
 * replaced by 0.5, fails with `type` at that very place only if it is an integer.
 */
export function nonPlainIntegerIssues(
  value: unknown,
  pointers: readonly string[],
  validate: Validate,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const pointer of pointers) {
    const probe = structuredClone(value);
    if (!setAt(probe, pointer, 0.5)) continue;
    const errors = validate(probe) ?? [];
    if (errors.some((e) => e.path === pointer && e.keyword === 'type')) {
      issues.push({
        path: pointer,
        keyword: 'type',
        message: 'must be written as a plain integer',
      });
    }
    if (issues.length >= 20) break;
  }
  return issues;
}
