import { CasebridgeError } from '../errors.js';

type Query = Record<string, unknown>;

/** A single optional string query parameter; repeated parameters are refused. */
export function optString(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string')
    throw new CasebridgeError('INVALID_PARAMETER', `${name} must be given once`);
  return v;
}

export function optEnum<T extends string>(
  q: Query,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const v = optString(q, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new CasebridgeError('INVALID_PARAMETER', `${name} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

export function optInt(q: Query, name: string, min: number, max: number): number | undefined {
  const v = optString(q, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new CasebridgeError(
      'INVALID_PARAMETER',
      `${name} must be an integer from ${min} to ${max}`,
    );
  }
  return Number(v);
}

export function reqInt(q: Query, name: string, min: number, max: number): number {
  const v = optInt(q, name, min, max);
  if (v === undefined) throw new CasebridgeError('INVALID_PARAMETER', `${name} is required`);
  return v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A message id path segment; anything else cannot name a message. */
export function messageId(raw: string | string[] | undefined): string {
  if (typeof raw !== 'string' || !UUID.test(raw))
    throw new CasebridgeError('NOT_FOUND', 'no such message');
  return raw;
}
