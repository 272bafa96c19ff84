/**
 * What crosses between the gateway's thread and the embedded store's thread
 * (thread.ts, thread-worker.ts). Values go by the structured clone algorithm,
 * which turns a Buffer into a plain Uint8Array and an error into a bare Error;
 * both are restored here, so callers see what the store itself returns and throws.
 */
import type { KeyObject } from 'node:crypto';
import type { AuditActor } from '../../audit/types.js';
import { CasebridgeError, ConfigError, type ErrorCode } from '../../errors.js';
import type { MessageChange } from '../../messages/types.js';
import { envelopeOf } from '../../envelope/payload.js';
import type { NewMessage } from '../../submission/ports.js';
import { KeyMissingError } from '../../retention/vault.js';
import { StoreUnavailableError, type StoreFailure } from '../errors.js';

export interface StoreThreadData {
  dataDir: string;
  dataKey: string;
  keyDir: string;
  gatewayActor: AuditActor;
  /** Signs receipts inside the acceptance transaction. */
  gatewayKey: KeyObject;
  gatewayChain: string[];
}

/** A NewMessage as sent: its envelope is read back from `jws` on arrival. */
export type WireMessage = Omit<NewMessage, 'envelope'>;

export function fromWireMessage(m: WireMessage): NewMessage {
  return { ...m, envelope: envelopeOf(m.jws) };
}

export interface Request {
  id: number;
  method: string;
  args: unknown[];
}

export type Reply =
  | { id: number; value: unknown }
  | { id: number; error: WireError }
  | { change: MessageChange }
  | { ready: true }
  | { failed: WireError };

type WireError =
  | {
      kind: 'casebridge';
      code: ErrorCode;
      message: string;
      members?: unknown;
      errors?: unknown;
      retryAfterS?: number;
    }
  | { kind: 'unavailable'; reason: StoreFailure; causeCode: string }
  | { kind: 'config'; variable: string; message: string }
  | { kind: 'key-missing'; epoch: string }
  | { kind: 'other'; name: string; message: string; code?: unknown };

export function toWire(e: unknown): WireError {
  if (e instanceof StoreUnavailableError) {
    return { kind: 'unavailable', reason: e.reason, causeCode: e.causeCode };
  }
  if (e instanceof CasebridgeError) {
    return {
      kind: 'casebridge',
      code: e.code,
      message: e.message,
      ...(e.members === undefined ? {} : { members: e.members }),
      ...(e.errors === undefined ? {} : { errors: e.errors }),
      ...(e.retryAfterS === undefined ? {} : { retryAfterS: e.retryAfterS }),
    };
  }
  if (e instanceof ConfigError) return { kind: 'config', variable: e.variable, message: e.message };
  if (e instanceof KeyMissingError) return { kind: 'key-missing', epoch: e.epoch };
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    kind: 'other',
    name: err.name,
    message: err.message,
    ...((err as { code?: unknown }).code === undefined
      ? {}
      : { code: (err as { code?: unknown }).code }),
  };
}

export function fromWire(w: WireError): Error {
  switch (w.kind) {
    case 'unavailable':
      return new StoreUnavailableError(w.reason, w.causeCode);
    case 'casebridge':
      return new CasebridgeError(w.code, w.message, {
        ...(w.members === undefined ? {} : { members: w.members as never }),
        ...(w.errors === undefined ? {} : { errors: w.errors as never }),
        ...(w.retryAfterS === undefined ? {} : { retryAfterS: w.retryAfterS }),
      });
    case 'config':
      return new ConfigError(w.variable, w.message.slice(w.variable.length + 2));
    case 'key-missing':
      return new KeyMissingError(w.epoch);
    case 'other': {
      const err = new Error(w.message);
      err.name = w.name;
      if (w.code !== undefined) (err as { code?: unknown }).code = w.code;
      return err;
    }
  }
}

/** Buffers arrive as Uint8Array; this turns them back, in place, in plain objects and arrays. */
export function reviveBuffers(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof Date) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveBuffers(v[i]);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (x !== null && typeof x === 'object') o[k] = reviveBuffers(x);
  }
  return v;
}
