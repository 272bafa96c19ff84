/** In-memory OutboxPort / InboxPort with the store's documented semantics, for transport tests. */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AuditActor } from '../../src/audit/types.js';
import type { MessageType } from '../../src/envelope/types.js';
import type { DeliverOutcome, InboxPort, OutboxItem, OutboxPort } from '../../src/store/types.js';

export const GATEWAY_ACTOR: AuditActor = {
  agency: 'GW-TEST',
  role: 'gateway',
  subject: `sha256:${'0'.repeat(64)}`,
};

interface Row {
  item: OutboxItem;
  queued: boolean;
  nextAt: number;
}

export class FakeOutbox implements OutboxPort {
  readonly rows = new Map<string, Row>();
  /** How many times each id was passed to markQueued. */
  readonly markCounts = new Map<string, number>();
  readonly markCalls: string[][] = [];
  readonly reschedules: Array<{ messageId: string; reason: string; delayMs: number }> = [];
  private nextIndex = 1;

  add(to: string, opts: { from?: string; type?: MessageType; jws?: string } = {}): OutboxItem {
    const jws = opts.jws ?? fakeJws();
    const item: OutboxItem = {
      messageId: randomUUID(),
      jws,
      digest: digestOf(jws),
      logIndex: this.nextIndex++,
      from: opts.from ?? 'CN-GX-CZ',
      to,
      type: opts.type ?? 'evidence.request',
      acceptedAt: new Date().toISOString(),
      attempts: 0,
    };
    this.rows.set(item.messageId, { item, queued: false, nextAt: 0 });
    return item;
  }

  async dueOutbox(limit: number, exclude: ReadonlySet<string>): Promise<OutboxItem[]> {
    const out: OutboxItem[] = [];
    const now = performance.now();
    for (const r of this.rows.values()) {
      if (out.length >= limit) break;
      if (r.queued || r.nextAt > now || exclude.has(r.item.messageId)) continue;
      out.push({ ...r.item });
    }
    return out;
  }

  markQueued(messageIds: readonly string[]): Promise<void> {
    this.markCalls.push([...messageIds]);
    for (const id of messageIds) {
      this.markCounts.set(id, (this.markCounts.get(id) ?? 0) + 1);
      const r = this.rows.get(id);
      if (r) r.queued = true;
    }
    return Promise.resolve();
  }

  async reschedule(messageId: string, delayMs: number, reason: string): Promise<void> {
    this.reschedules.push({ messageId, reason, delayMs });
    const r = this.rows.get(messageId);
    if (!r || r.queued) return;
    r.item.attempts++;
    r.nextAt = performance.now() + delayMs;
  }

  async outboxLag(): Promise<number> {
    let n = 0;
    for (const r of this.rows.values()) if (!r.queued) n++;
    return n;
  }

  isQueued(id: string): boolean {
    return this.rows.get(id)?.queued === true;
  }
}

export class FakeInbox implements InboxPort {
  readonly delivered = new Map<string, string>();
  readonly calls: string[] = [];
  /** Ids the "store" knows; deliver answers 'unknown' for others. */
  readonly known = new Set<string>();
  failWith: ((messageId: string) => Error | undefined) | undefined;

  deliver(messageId: string, digest: string): Promise<DeliverOutcome> {
    this.calls.push(messageId);
    const fail = this.failWith?.(messageId);
    if (fail) return Promise.reject(fail);
    if (!this.known.has(messageId)) return Promise.resolve('unknown');
    if (this.delivered.has(messageId)) return Promise.resolve('duplicate');
    this.delivered.set(messageId, digest);
    return Promise.resolve('delivered');
  }
}

export function digestOf(jws: string): string {
  return `sha256:${createHash('sha256').update(jws, 'ascii').digest('hex')}`;
}

/** A structurally plausible compact JWS (not verifiable; the transport never verifies signatures). */
export function fakeJws(): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return [
    b64({ alg: 'ES256', typ: 'casebridge-message+jws' }),
    b64({ id: randomUUID(), n: randomBytes(8).toString('hex') }),
    randomBytes(64).toString('base64url'),
  ].join('.');
}

/** A logger that records lines, so tests can check nothing sensitive is logged. */
export function recordingLogger(): {
  lines: Array<{ level: string; msg: string; meta: Record<string, unknown> | undefined }>;
  info(m: string, meta?: Record<string, unknown>): void;
  warn(m: string, meta?: Record<string, unknown>): void;
  error(m: string, meta?: Record<string, unknown>): void;
} {
  const lines: Array<{ level: string; msg: string; meta: Record<string, unknown> | undefined }> =
    [];
  return {
    lines,
    info: (msg, meta) => lines.push({ level: 'info', msg, meta }),
    warn: (msg, meta) => lines.push({ level: 'warn', msg, meta }),
    error: (msg, meta) => lines.push({ level: 'error', msg, meta }),
  };
}
