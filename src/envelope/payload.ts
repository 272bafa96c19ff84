import type { Envelope } from './types.js';

/**
 * The envelope of a JWS the gateway accepted: its payload read back. The strict
 * parse and the schema ran once, at submission, so plain JSON.parse is enough.
 */
export function envelopeOf(jws: string): Envelope {
  const payload = jws.slice(jws.indexOf('.') + 1, jws.lastIndexOf('.'));
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Envelope;
}
