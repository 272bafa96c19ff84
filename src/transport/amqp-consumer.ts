/**
 * The inbox consumer (protocol §5.2): reads `casebridge.inbox.<agency>` for the
 * agencies this gateway serves and records each message into the inbox through
 * `InboxPort.deliver`, acking only after the store answered. Idempotency is the
 * store's: a redelivered id answers 'duplicate' and is acked without a second
 * inbox entry. Anything else is nacked with requeue, so the quorum queue's
 * `x-delivery-limit` finally dead-letters a poison message to `casebridge.dead`.
 *
 * Logs carry ids, digests and reasons only — never body content.
 */
import { digestOfBytes } from '../envelope/jws.js';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { AuditActor } from '../audit/types.js';
import type { DeliverOutcome, InboxPort } from './ports.js';
import { backoffDelay, sleep } from './backoff.js';
import {
  emit,
  errorText,
  type ConsumeFailure,
  type TransportEvents,
  type TransportLogger,
} from './events.js';
import { BrokerLink, type LinkStart } from './link.js';
import { HEADER_DIGEST } from './amqp-relay.js';
import { declareTopology, inboxQueue, type TopologySpec } from './topology.js';

/** Retries of a held delivery: soon after space returns, and shutdown is not held up long. */
const HOLD_BACKOFF = { baseMs: 250, capMs: 5000 };

/** Thrown by deliverHolding when it stops holding a message it could not record. */
const GIVEN_UP = Symbol('given up');

/** The store's "try again later" (protocol §4 UNAVAILABLE): a full or failing disk. */
function isStoreUnavailable(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'UNAVAILABLE';
}

/** Set by quorum queues on redelivery: earlier unsuccessful deliveries (RabbitMQ 3.10). */
const HEADER_DELIVERY_COUNT = 'x-delivery-count';

export interface AmqpConsumerOptions {
  url: string;
  inbox: InboxPort;
  actor: AuditActor;
  /** Agencies whose inbox queues this gateway consumes. */
  agencies: readonly string[];
  topology: TopologySpec;
  events?: TransportEvents | undefined;
  logger: TransportLogger;
  /** Unacked deliveries per consumer. Default 64. */
  prefetch?: number | undefined;
  connectTimeoutMs?: number | undefined;
}

export class AmqpConsumer {
  private readonly events: TransportEvents;
  private readonly logger: TransportLogger;
  private readonly prefetch: number;
  private readonly link: BrokerLink;
  private channel: Channel | undefined;
  private stopping = false;
  private handling = 0;
  private idleWaiters: Array<() => void> = [];
  private channelRetry: NodeJS.Timeout | undefined;
  private channelFailures = 0;
  private consumerTags: string[] = [];

  constructor(private readonly opts: AmqpConsumerOptions) {
    this.events = opts.events ?? {};
    this.logger = opts.logger;
    this.prefetch = opts.prefetch ?? 64;
    this.link = new BrokerLink(
      {
        url: opts.url,
        component: 'consumer',
        events: this.events,
        logger: this.logger,
        connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      },
      {
        onConnect: (model) => this.onConnect(model),
        onDisconnect: () => {
          this.channel = undefined;
        },
      },
    );
  }

  get connected(): boolean {
    return this.link.connected && this.channel !== undefined;
  }

  /** Deliveries being recorded right now. */
  get inFlight(): number {
    return this.handling;
  }

  async start(): Promise<LinkStart> {
    this.stopping = false;
    try {
      return await this.link.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops taking deliveries, lets the ones being recorded finish and ack, then disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.channelRetry) clearTimeout(this.channelRetry);
    const ch = this.channel;
    if (ch) {
      // Cancel consumers first so no new deliveries start; unacked ones are requeued on close.
      const tags = this.consumerTags.splice(0);
      await Promise.all(tags.map((t) => ch.cancel(t).catch(() => {})));
    }
    if (this.handling > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.channel = undefined;
    if (ch) await ch.close().catch(() => {});
    await this.link.stop();
  }

  /** Cuts the connection at once; unacked deliveries go back to the queue. */
  abort(): void {
    this.stopping = true;
    if (this.channelRetry) clearTimeout(this.channelRetry);
    this.channel = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
    this.link.abort();
  }

  private async onConnect(model: ChannelModel): Promise<void> {
    await declareTopology(model, this.opts.topology);
    await this.openChannel(model);
  }

  private async openChannel(model: ChannelModel): Promise<void> {
    const ch = await model.createChannel();
    ch.on('error', (err: Error) =>
      this.logger.warn('consumer channel error', { component: 'consumer', error: errorText(err) }),
    );
    ch.on('close', () => this.onChannelClosed(ch, model));
    // Per-consumer prefetch (RabbitMQ ≥ 3.3 semantics of global=false).
    await ch.prefetch(this.prefetch, false);
    const tags: string[] = [];
    for (const agency of this.opts.agencies) {
      const ok = await ch.consume(
        inboxQueue(agency),
        (msg) => void this.onMessage(ch, msg, model),
        { noAck: false },
      );
      tags.push(ok.consumerTag);
    }
    this.consumerTags = tags;
    this.channel = ch;
    this.channelFailures = 0;
  }

  private onChannelClosed(ch: Channel, model: ChannelModel): void {
    if (this.channel !== ch) return;
    this.channel = undefined;
    if (this.stopping || !this.link.connected) return;
    this.reopenLater(model);
  }

  private reopenLater(model: ChannelModel): void {
    if (this.channelRetry) return;
    this.channelFailures++;
    const delay = backoffDelay(this.channelFailures);
    this.logger.warn('consumer channel lost; reopening', { component: 'consumer', delayMs: delay });
    this.channelRetry = setTimeout(() => {
      this.channelRetry = undefined;
      if (this.stopping || this.channel || !this.link.connected) return;
      this.openChannel(model).catch((err: unknown) => {
        this.logger.warn('consumer channel reopen failed', {
          component: 'consumer',
          error: errorText(err),
        });
        if (this.link.connected) this.reopenLater(model);
      });
    }, delay);
  }

  private async onMessage(
    ch: Channel,
    msg: ConsumeMessage | null,
    model: ChannelModel,
  ): Promise<void> {
    if (msg === null) {
      // The broker cancelled the consumer (queue deleted or its leader moved): rebuild the channel.
      this.logger.warn('consumer cancelled by broker', { component: 'consumer' });
      if (this.channel === ch) {
        this.channel = undefined;
        await ch.close().catch(() => {});
        if (!this.stopping) this.reopenLater(model);
      }
      return;
    }
    this.handling++;
    try {
      await this.handle(ch, msg);
    } finally {
      this.handling--;
      if (this.handling === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async handle(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const id: unknown = msg.properties.messageId;
    const messageId = typeof id === 'string' && id.length > 0 ? id : undefined;
    const header: unknown = msg.properties.headers?.[HEADER_DIGEST];
    if (messageId === undefined || typeof header !== 'string')
      return this.giveBack(ch, msg, messageId, undefined, 'malformed');
    const digest = digestOfBytes(msg.content);
    if (digest !== header) return this.giveBack(ch, msg, messageId, digest, 'digest-mismatch');

    let outcome: DeliverOutcome;
    try {
      outcome = await this.deliverHolding(ch, messageId, digest);
    } catch (err) {
      if (err === GIVEN_UP) return; // stopping or channel gone: the broker redelivers it
      this.logger.error('inbox deliver failed', {
        component: 'consumer',
        messageId,
        digest,
        error: errorText(err),
      });
      return this.giveBack(ch, msg, messageId, digest, 'deliver-failed');
    }
    if (outcome === 'unknown') return this.giveBack(ch, msg, messageId, digest, 'unknown');
    if (!this.settle(ch, msg, true)) return;
    if (outcome === 'delivered') {
      this.logger.info('message delivered', { component: 'consumer', messageId, digest });
      emit(this.events, this.logger, 'delivered', messageId);
    } else {
      this.logger.info('duplicate delivery acked', { component: 'consumer', messageId, digest });
      emit(this.events, this.logger, 'duplicate', messageId);
    }
  }

  /**
   * Records the delivery. While the store cannot write (a full disk), the message
   * is held unacked and tried again with backoff: a nack would spend the queue's
   * delivery limit and dead-letter a message that is perfectly good. Held messages
   * fill the prefetch window, which pauses the queue until the store writes again.
   */
  private async deliverHolding(
    ch: Channel,
    messageId: string,
    digest: string,
  ): Promise<DeliverOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.opts.inbox.deliver(messageId, digest, this.opts.actor);
      } catch (err) {
        if (!isStoreUnavailable(err)) throw err;
        if (attempt === 1) {
          this.logger.warn('store cannot write; holding delivery', {
            component: 'consumer',
            messageId,
            digest,
          });
        }
      }
      await sleep(backoffDelay(attempt, HOLD_BACKOFF));
      if (this.stopping || this.channel !== ch) throw GIVEN_UP;
    }
  }

  /** nack with requeue; the queue's delivery limit dead-letters what keeps failing. */
  private giveBack(
    ch: Channel,
    msg: ConsumeMessage,
    messageId: string | undefined,
    digest: string | undefined,
    reason: ConsumeFailure,
  ): void {
    if (!this.settle(ch, msg, false)) return;
    const previous = Number(msg.properties.headers?.[HEADER_DELIVERY_COUNT] ?? 0);
    const last = Number.isFinite(previous) && previous + 1 > this.opts.topology.deliveryLimit;
    this.logger.warn(
      last ? 'delivery failed; broker will dead-letter it' : 'delivery failed; requeued',
      {
        component: 'consumer',
        messageId,
        digest,
        reason,
        deliveryCount: previous + 1,
      },
    );
    emit(this.events, this.logger, 'rejected', messageId, reason);
    if (last) emit(this.events, this.logger, 'poison', messageId, reason);
  }

  /** Acks or nacks on the channel the delivery came from; false if that channel is gone (the broker redelivers). */
  private settle(ch: Channel, msg: ConsumeMessage, ok: boolean): boolean {
    try {
      if (ok) ch.ack(msg);
      else ch.nack(msg, false, true);
      return true;
    } catch {
      this.logger.warn('channel gone before settling; broker will redeliver', {
        component: 'consumer',
        messageId:
          typeof msg.properties.messageId === 'string' ? msg.properties.messageId : undefined,
      });
      return false;
    }
  }
}
