/**
 * protocol §9.4, a phase of `audit verify`: every file of a transfer was
 * `file.stored` by the sending agency, with the same digest and size, before the
 * transfer's `message.accepted`. Checked from the entries alone (each `file.bound`
 * names the file and its message) and, when the bundle carries the message JWS,
 * from every item of the transfer itself. Pure: fed entries and envelopes, it
 * returns failures.
 */
import type { AuditEntry } from './types.js';

export interface FileCustodyFailure {
  index: number;
  reason: 'file-unstored';
  detail: string;
}

interface Accepted {
  index: number;
  from: string | undefined;
}

export class FileCustodyCheck {
  /** `agency digest` → sizes stored, as of the entries read so far, with their indexes. */
  private readonly stored = new Map<string, { index: number; size: number }[]>();
  private readonly accepted = new Map<string, Accepted>();

  /** Feeds one entry, in log order. */
  entry(e: AuditEntry, index: number): FileCustodyFailure[] {
    switch (e.event) {
      case 'file.stored': {
        const agency = stringDetail(e, 'agency') ?? e.actor.agency;
        const size = e.detail?.['size'];
        if (e.digest !== undefined && typeof size === 'number') {
          const key = `${agency} ${e.digest}`;
          const list = this.stored.get(key) ?? [];
          list.push({ index, size });
          this.stored.set(key, list);
        }
        return [];
      }
      case 'message.accepted':
        if (e.messageId !== undefined) this.accepted.set(e.messageId, { index, from: e.from });
        return [];
      case 'file.bound': {
        const acc = e.messageId === undefined ? undefined : this.accepted.get(e.messageId);
        const size = e.detail?.['size'];
        if (acc === undefined || e.digest === undefined || typeof size !== 'number') {
          return [
            {
              index,
              reason: 'file-unstored',
              detail: 'file.bound names no accepted message or file',
            },
          ];
        }
        return this.storedBefore(acc, e.digest, size, index);
      }
      default:
        return [];
    }
  }

  /** Checks every item of a transfer whose JWS the bundle carries (its digest already matched). */
  transfer(messageId: string, envelope: unknown): FileCustodyFailure[] {
    const acc = this.accepted.get(messageId);
    if (acc === undefined || !isObject(envelope) || envelope['type'] !== 'evidence.transfer')
      return [];
    const body = envelope['body'];
    const items = isObject(body) && Array.isArray(body['items']) ? body['items'] : [];
    const out: FileCustodyFailure[] = [];
    for (const item of items) {
      if (
        !isObject(item) ||
        typeof item['sha256'] !== 'string' ||
        typeof item['size'] !== 'number'
      ) {
        out.push({
          index: acc.index,
          reason: 'file-unstored',
          detail: 'a transfer item has no sha256 and size',
        });
        continue;
      }
      out.push(...this.storedBefore(acc, `sha256:${item['sha256']}`, item['size'], acc.index));
    }
    return out;
  }

  private storedBefore(
    acc: Accepted,
    digest: string,
    size: number,
    at: number,
  ): FileCustodyFailure[] {
    const list = this.stored.get(`${acc.from} ${digest}`) ?? [];
    if (list.some((s) => s.index < acc.index && s.size === size)) return [];
    return [
      {
        index: at,
        reason: 'file-unstored',
        detail: `${digest} (${size} bytes) was not file.stored by ${acc.from} before message.accepted at ${acc.index}`,
      },
    ];
  }
}

function stringDetail(e: AuditEntry, key: string): string | undefined {
  const v = e.detail?.[key];
  return typeof v === 'string' ? v : undefined;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
