/**
 * The outbox relay (protocol §5.2): publishes due outbox rows on a confirm channel,
 * `mandatory`, and marks a row queued only once the broker acked it.
 *
 * Outcomes per message:
 * - ack (and no basic.return before it) → collected, `markQueued` in batches;
 * - basic.return → unroutable; the ack that follows it is NOT success;
 * - nack, confirm timeout, channel/connection closed → `reschedule` with backoff.
 * The outbox is the source of truth, so a crash or outage loses nothing; the
 * price is at-least-once: a message whose ack was lost is published again and
 * the consumer drops the duplicate by message id.
 */
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import type { AuditActor } from '../audit/types.js';
import type { OutboxItem, OutboxPort } from './ports.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import {
  emit,
  errorText,
  type RetryReason,
  type TransportEvents,
  type TransportLogger,
} from './events.js';
import { BrokerLink, type LinkStart } from './link.js';
import { declareTopology, MESSAGES_EXCHANGE, routingKey, type TopologySpec } from './topology.js';

export const JOSE_CONTENT_TYPE = 'application/jose';
export const HEADER_DIGEST = 'x-casebridge-digest';
export const HEADER_LOG_INDEX = 'x-casebridge-log-index';
export const HEADER_FROM = 'x-casebridge-from';
/** The relay reads the outbox again only when at least this many slots are free (or none are in flight). */
const REFILL_MIN = 32;

export interface AmqpRelayOptions {
  url: string;
  outbox: OutboxPort;
  actor: AuditActor;
  topology: TopologySpec;
  events?: TransportEvents | undefined;
  logger: TransportLogger;
  /** Messages published and not yet confirmed, at most. Default 256. */
  inFlight?: number | undefined;
  /** Per-message wait for the broker's confirm. Default 10 s. */
  confirmTimeoutMs?: number | undefined;
  /** Outbox poll period. Default 250 ms. */
  pollIntervalMs?: number | undefined;
  /** Most ids in one `markQueued` call. Default 200. */
  markBatch?: number | undefined;
  backoff?: BackoffPolicy | undefined;
  connectTimeoutMs?: number | undefined;
}

interface Pending {
  item: OutboxItem;
  channel: ConfirmChannel;
  returned: boolean;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class AmqpRelay {
  private readonly outbox: OutboxPort;
  private readonly events: TransportEvents;
  private readonly logger: TransportLogger;
  private readonly limit: number;
  private readonly confirmTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly markBatch: number;
  private readonly backoff: BackoffPolicy;
  private readonly link: BrokerLink;

  private channel: ConfirmChannel | undefined;
  private readonly closedChannels = new WeakSet<ConfirmChannel>();
  private readonly pending = new Map<string, Pending>();
  /** Acked ids waiting for `markQueued`, and those being marked right now. */
  private acked = new Set<string>();
  private marking = new Set<string>();
  private markTimer: NodeJS.Timeout | undefined;
  private markFailures = 0;
  private markRun: Promise<void> | undefined;
  private awaitingDrain = false;
  /** Failed ids whose new due time is being written. */
  private readonly rescheduling = new Set<string>();
  private pumping = false;
  private kickScheduled = false;
  /** Rows read from the outbox but not yet published (the channel asked us to wait). */
  private backlog: OutboxItem[] = [];
  private pumpAgain = false;
  private stopping = false;
  private poller: NodeJS.Timeout | undefined;
  private channelRetry: NodeJS.Timeout | undefined;
  private channelFailures = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: AmqpRelayOptions) {
    this.outbox = opts.outbox;
    this.events = opts.events ?? {};
    this.logger = opts.logger;
    this.limit = opts.inFlight ?? 256;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 10_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 250;
    this.markBatch = opts.markBatch ?? 200;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.link = new BrokerLink(
      {
        url: opts.url,
        component: 'relay',
        events: this.events,
        logger: this.logger,
        connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      },
      {
        onConnect: (model) => this.onConnect(model),
        onDisconnect: () => this.dropChannel(),
        onBlocked: (blocked) => {
          if (!blocked) this.kick();
        },
      },
    );
  }

  get inFlight(): number {
    return this.pending.size;
  }
  get connected(): boolean {
    return this.link.connected && this.channel !== undefined;
  }
  get blocked(): boolean {
    return this.link.blocked;
  }

  /** See `LinkStart`. Rejects with TopologyError when the broker's topology differs. */
  async start(): Promise<LinkStart> {
    this.stopping = false;
    this.poller = setInterval(() => this.kick(), this.pollIntervalMs);
    this.poller.unref();
    try {
      return await this.link.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops publishing, waits (up to the confirm timeout) for in-flight confirms, records them, disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.poller) clearInterval(this.poller);
    if (this.channelRetry) clearTimeout(this.channelRetry);
    this.poller = undefined;
    if (this.pending.size > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => setTimeout(r, this.confirmTimeoutMs).unref()),
      ]);
    }
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = undefined;
    await this.flushMarks();
    const ch = this.channel;
    this.channel = undefined;
    if (ch && !this.closedChannels.has(ch)) await ch.close().catch(() => {});
    await this.link.stop();
  }

  /** Cuts the connection without waiting for anything; unconfirmed rows stay in the outbox. */
  abort(): void {
    this.stopping = true;
    if (this.poller) clearInterval(this.poller);
    if (this.channelRetry) clearTimeout(this.channelRetry);
    if (this.markTimer) clearTimeout(this.markTimer);
    this.poller = undefined;
    this.markTimer = undefined;
    this.channel = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
    this.link.abort();
  }

  /**
   * Wake the relay (the acceptance path calls this after a commit). Kicks within
   * one event-loop turn share one pump: many accepts and confirms, one outbox read.
   */
  kick(): void {
    if (this.stopping || this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      if (this.stopping) return;
      if (this.pumping) {
        this.pumpAgain = true;
        return;
      }
      void this.pump();
    });
  }

  // --- channel lifecycle -------------------------------------------------

  private async onConnect(model: ChannelModel): Promise<void> {
    // Re-declared on every connection: cheap, idempotent, and it repairs a reset broker.
    await declareTopology(model, this.opts.topology);
    await this.openChannel(model);
  }

  private async openChannel(model: ChannelModel): Promise<void> {
    const ch = await model.createConfirmChannel();
    ch.on('error', (err: Error) =>
      this.logger.warn('relay channel error', { component: 'relay', error: errorText(err) }),
    );
    // Runs before amqplib's own 'close' handler fails the unconfirmed callbacks,
    // so those callbacks can tell "channel closed" from a broker nack.
    ch.prependListener('close', () => this.closedChannels.add(ch));
    ch.on('close', () => this.onChannelClosed(ch, model));
    ch.on('return', (msg: Message) => this.onReturn(ch, msg));
    this.channel = ch;
    this.awaitingDrain = false;
    this.channelFailures = 0;
    this.kick();
  }

  private onChannelClosed(ch: ConfirmChannel, model: ChannelModel): void {
    if (this.channel !== ch) return;
    this.dropChannel();
    if (this.stopping || !this.link.connected) return; // a dead connection is recovery's job
    // The channel alone died (e.g. a broker-side channel error): reopen it on the same connection.
    this.reopenLater(model);
  }

  /** Reopens the channel after a backoff, and again after each failed attempt, while connected. */
  private reopenLater(model: ChannelModel): void {
    if (this.channelRetry) return;
    this.channelFailures++;
    const delay = backoffDelay(this.channelFailures, this.backoff);
    this.logger.warn('relay channel closed; reopening', {
      component: 'relay',
      attempt: this.channelFailures,
      delayMs: delay,
    });
    this.channelRetry = setTimeout(() => {
      this.channelRetry = undefined;
      if (this.stopping || this.channel || !this.link.connected) return;
      this.reopen(model).catch((err: unknown) => {
        this.logger.warn('relay channel reopen failed', {
          component: 'relay',
          error: errorText(err),
        });
        // A new connection opens its own channel; otherwise keep trying on this one.
        if (!this.stopping && !this.channel && this.link.connected) this.reopenLater(model);
      });
    }, delay);
  }

  /** A channel error may mean our topology was removed under us (404): declare it again first. */
  private async reopen(model: ChannelModel): Promise<void> {
    await declareTopology(model, this.opts.topology);
    await this.openChannel(model);
  }

  private dropChannel(): void {
    this.channel = undefined;
    this.awaitingDrain = false;
  }

  // --- publishing --------------------------------------------------------

  /** One pump at a time; a kick during a pump runs it again once it ends. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.publishDue();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private async publishDue(): Promise<void> {
    for (;;) {
      const ch = this.channel;
      if (!ch || this.stopping || this.link.blocked || this.awaitingDrain) return;
      const room = this.limit - this.pending.size;
      if (room <= 0) return;
      let items: OutboxItem[];
      /** A read that came back short found everything due: no second read in this pump. */
      let drained = false;
      if (this.backlog.length > 0) {
        items = this.backlog.splice(0, room);
      } else {
        // Refill in useful amounts: one read for many free slots, not one per confirm.
        if (room < Math.min(REFILL_MIN, this.limit) && this.pending.size > 0) return;
        try {
          items = await this.outbox.dueOutbox(room, this.held());
        } catch (err) {
          this.logger.error('outbox read failed', { component: 'relay', error: errorText(err) });
          return;
        }
        drained = items.length < room;
      }
      if (items.length === 0) return;
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (
          this.pending.has(item.messageId) ||
          this.acked.has(item.messageId) ||
          this.marking.has(item.messageId)
        )
          continue;
        if (!this.publishOne(ch, item)) {
          this.backlog.unshift(...items.slice(i + 1));
          return;
        }
      }
      // Rows committed later kick the relay again (and the poller finds any other).
      if (drained) return;
    }
  }

  private held(): Set<string> {
    const s = new Set(this.pending.keys());
    for (const item of this.backlog) s.add(item.messageId);
    for (const id of this.acked) s.add(id);
    for (const id of this.marking) s.add(id);
    for (const id of this.rescheduling) s.add(id);
    return s;
  }

  /** Returns false when publishing must pause (buffer full or channel gone). */
  private publishOne(ch: ConfirmChannel, item: OutboxItem): boolean {
    const p: Pending = { item, channel: ch, returned: false, settled: false, timer: undefined };
    this.pending.set(item.messageId, p);
    p.timer = setTimeout(() => this.onConfirmTimeout(p), this.confirmTimeoutMs);
    let writable: boolean;
    try {
      writable = ch.publish(
        MESSAGES_EXCHANGE,
        routingKey(item.to, item.type),
        Buffer.from(item.jws, 'utf8'),
        {
          mandatory: true,
          persistent: true,
          messageId: item.messageId,
          contentType: JOSE_CONTENT_TYPE,
          type: item.type,
          // AMQP timestamp is whole seconds; amqplib throws on a fraction (BigInt).
          timestamp: Math.floor(Date.parse(item.acceptedAt) / 1000),
          headers: {
            [HEADER_DIGEST]: item.digest,
            // A fixed 64-bit type: amqplib would otherwise pick byte/short/int by magnitude.
            [HEADER_LOG_INDEX]: { '!': 'long', value: item.logIndex },
            [HEADER_FROM]: item.from,
          },
        },
        (err: unknown) => this.onConfirm(p, err),
      );
    } catch (err) {
      // Thrown before amqplib registered the confirm callback: settle it ourselves.
      this.logger.warn('publish failed', {
        component: 'relay',
        messageId: item.messageId,
        error: errorText(err),
      });
      this.settle(p, 'publish-error');
      return false;
    }
    emit(this.events, this.logger, 'published', item.messageId);
    if (!writable) {
      this.awaitingDrain = true;
      ch.once('drain', () => {
        if (this.channel !== ch) return;
        this.awaitingDrain = false;
        this.kick();
      });
      return false;
    }
    return true;
  }

  private onReturn(ch: ConfirmChannel, msg: Message): void {
    const id: unknown = msg.properties.messageId;
    if (typeof id !== 'string') return;
    const p = this.pending.get(id);
    // basic.return precedes the basic.ack for the same message on the same channel.
    if (p && p.channel === ch) p.returned = true;
    this.logger.warn('message returned as unroutable', {
      component: 'relay',
      messageId: id,
      routingKey: msg.fields.routingKey,
      replyCode: (msg.fields as { replyCode?: unknown }).replyCode,
    });
    emit(this.events, this.logger, 'returned', id);
  }

  private onConfirm(p: Pending, err: unknown): void {
    if (p.settled) {
      // A late ack after we gave up: the broker has it after all. markQueued is idempotent.
      if (err == null && !p.returned) this.collectAck(p.item.messageId);
      return;
    }
    if (err != null) this.settle(p, this.closedChannels.has(p.channel) ? 'channel-closed' : 'nack');
    else if (p.returned) this.settle(p, 'returned');
    else this.settle(p, undefined);
  }

  private onConfirmTimeout(p: Pending): void {
    if (p.settled) return;
    if (this.link.blocked) {
      // A blocked connection holds confirms back by design; waiting is not failure.
      p.timer = setTimeout(() => this.onConfirmTimeout(p), this.confirmTimeoutMs);
      return;
    }
    this.settle(p, 'confirm-timeout');
  }

  /** Ends one attempt: success (reason undefined) or a reschedule. */
  private settle(p: Pending, reason: RetryReason | undefined): void {
    p.settled = true;
    if (p.timer) clearTimeout(p.timer);
    const id = p.item.messageId;
    if (this.pending.get(id) === p) this.pending.delete(id);
    if (reason === undefined) this.collectAck(id);
    else this.retry(p.item, reason);
    if (this.pending.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.kick();
  }

  private retry(item: OutboxItem, reason: RetryReason): void {
    const attempt = item.attempts + 1;
    const delayMs = backoffDelay(attempt, this.backoff);
    // Held until the store has the new due time, so no read hands the row out again first.
    this.rescheduling.add(item.messageId);
    this.outbox
      .reschedule(item.messageId, delayMs, reason)
      .catch((err: unknown) => {
        this.logger.error('outbox reschedule failed', {
          component: 'relay',
          messageId: item.messageId,
          error: errorText(err),
        });
      })
      .finally(() => this.rescheduling.delete(item.messageId));
    this.logger.warn('publish attempt failed; rescheduled', {
      component: 'relay',
      messageId: item.messageId,
      digest: item.digest,
      reason,
      attempt,
      delayMs,
    });
    emit(this.events, this.logger, 'retried', reason, item.messageId);
  }

  // --- marking queued ----------------------------------------------------

  private collectAck(id: string): void {
    this.acked.add(id);
    if (this.acked.size >= this.markBatch) void this.flushMarks();
    else if (!this.markTimer) {
      this.markTimer = setTimeout(() => {
        this.markTimer = undefined;
        void this.flushMarks();
      }, 10);
    }
  }

  /** One `markQueued` call at a time, each for many ids; resolves when the current run ends. */
  private flushMarks(): Promise<void> {
    if (!this.markRun) {
      this.markRun = this.runMarks().finally(() => {
        this.markRun = undefined;
      });
    }
    return this.markRun;
  }

  private async runMarks(): Promise<void> {
    while (this.acked.size > 0) {
      const ids = [...this.acked].slice(0, this.markBatch);
      for (const id of ids) {
        this.acked.delete(id);
        this.marking.add(id);
      }
      try {
        await this.opts.outbox.markQueued(ids, this.opts.actor);
        this.markFailures = 0;
        emit(this.events, this.logger, 'confirmed', ids.length);
      } catch (err) {
        // The broker has these; keep them held and try again, never republish them.
        this.markFailures++;
        for (const id of ids) this.acked.add(id);
        const delay = backoffDelay(this.markFailures, this.backoff);
        this.logger.error('markQueued failed; retrying', {
          component: 'relay',
          count: ids.length,
          delayMs: delay,
          error: errorText(err),
        });
        this.marking.clear();
        if (this.stopping) return;
        if (!this.markTimer) {
          this.markTimer = setTimeout(() => {
            this.markTimer = undefined;
            void this.flushMarks();
          }, delay);
        }
        return;
      }
      this.marking.clear();
      this.kick();
    }
  }
}
