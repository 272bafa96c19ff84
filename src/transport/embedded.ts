/**
 * Embedded delivery (protocol §5.2, no broker URL): the same outbox drained in
 * process, with the same lifecycle (`queued`, then `delivered`), retries, kick
 * and poll. A row stays in the outbox until its delivery is recorded, so a
 * restart resumes whatever was under way.
 */
import type { AuditActor } from '../audit/types.js';
import type { InboxPort, OutboxItem, OutboxPort } from './ports.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { emit, errorText, type TransportEvents, type TransportLogger } from './events.js';
import { DEFAULT_DELIVERY_LIMIT } from './topology.js';

export interface EmbeddedDeliveryOptions {
  outbox: OutboxPort;
  inbox: InboxPort;
  actor: AuditActor;
  events?: TransportEvents | undefined;
  logger: TransportLogger;
  /** Messages between dueOutbox and a settled deliver, at most. Default 256. */
  inFlight?: number | undefined;
  pollIntervalMs?: number | undefined;
  /** Deliver attempts before a message is given up as poison. Default 5 (as the broker's x-delivery-limit). */
  deliveryLimit?: number | undefined;
  backoff?: BackoffPolicy | undefined;
}

export class EmbeddedDelivery {
  private readonly events: TransportEvents;
  private readonly logger: TransportLogger;
  private readonly limit: number;
  private readonly deliveryLimit: number;
  private readonly backoff: BackoffPolicy;
  private readonly held = new Set<string>();
  /** Wake-ups for rescheduled rows, so a retry does not wait for the next poll. */
  private readonly retries = new Set<NodeJS.Timeout>();
  private poller: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopping = true;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: EmbeddedDeliveryOptions) {
    this.events = opts.events ?? {};
    this.logger = opts.logger;
    this.limit = opts.inFlight ?? 256;
    this.deliveryLimit = opts.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  get inFlight(): number {
    return this.held.size;
  }

  start(): Promise<void> {
    this.stopping = false;
    this.poller = setInterval(() => this.kick(), this.opts.pollIntervalMs ?? 250);
    this.poller.unref();
    this.kick();
    return Promise.resolve();
  }

  /** Stops taking rows and lets deliveries in progress finish; rescheduled rows stay in the outbox. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await this.running;
    if (this.held.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        if (this.stopping) return;
        const room = this.limit - this.held.size;
        if (room <= 0) break;
        let items: OutboxItem[];
        try {
          items = await this.opts.outbox.dueOutbox(room, this.held);
        } catch (err) {
          this.logger.error('outbox read failed', { component: 'embedded', error: errorText(err) });
          return;
        }
        if (items.length === 0) break;
        await this.queue(items);
        // A short read found everything due; later commits kick again.
        if (items.length < room) break;
      }
    } while (this.again);
  }

  /**
   * Delivers first, then clears the outbox rows. The store's `deliver` records
   * `queued` and `delivered` in one transaction, and a row leaves the outbox only
   * after that: a crash in between leaves the row, whose redelivery the inbox
   * recognises as a duplicate. Nothing accepted is lost, nothing delivered twice.
   */
  private async queue(items: OutboxItem[]): Promise<void> {
    for (const item of items) this.held.add(item.messageId);
    const outcomes = await Promise.all(items.map((item) => this.deliver(item)));
    const done = items.filter((_, i) => outcomes[i]).map((i) => i.messageId);
    if (done.length > 0) {
      try {
        await this.opts.outbox.markQueued(done, this.opts.actor);
        emit(this.events, this.logger, 'confirmed', done.length);
      } catch (err) {
        // The rows stay in the outbox; the next pass redelivers them as duplicates.
        this.logger.error('outbox clear failed', {
          component: 'embedded',
          count: done.length,
          error: errorText(err),
        });
      }
    }
    for (const item of items) this.release(item.messageId);
  }

  private async deliver(item: OutboxItem): Promise<boolean> {
    const { messageId, digest } = item;
    let reason: 'unknown' | 'deliver-failed';
    try {
      const outcome = await this.opts.inbox.deliver(messageId, digest, this.opts.actor);
      if (outcome === 'delivered' || outcome === 'duplicate') {
        emit(this.events, this.logger, 'published', messageId);
        emit(this.events, this.logger, outcome, messageId);
        return true;
      }
      reason = 'unknown';
    } catch (err) {
      reason = 'deliver-failed';
      this.logger.warn('embedded delivery failed', {
        component: 'embedded',
        messageId,
        error: errorText(err),
      });
    }
    const attempt = item.attempts + 1;
    emit(this.events, this.logger, 'rejected', messageId, reason);
    // Keeps retrying with capped backoff: the row is never dropped, only reported.
    if (attempt === this.deliveryLimit) emit(this.events, this.logger, 'poison', messageId, reason);
    const delay = backoffDelay(attempt, this.backoff);
    try {
      // Still held: the row is released only after its new due time is stored.
      await this.opts.outbox.reschedule(messageId, delay, reason);
    } catch (err) {
      this.logger.error('outbox reschedule failed', {
        component: 'embedded',
        messageId,
        error: errorText(err),
      });
    }
    const wake = setTimeout(() => {
      this.retries.delete(wake);
      this.kick();
    }, delay + 1);
    wake.unref();
    this.retries.add(wake);
    emit(
      this.events,
      this.logger,
      'retried',
      reason === 'unknown' ? 'unknown-message' : 'deliver-failed',
      messageId,
    );
    return false;
  }

  private release(id: string): void {
    this.held.delete(id);
    if (this.held.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    if (!this.stopping) this.kick();
  }
}
