/**
 * The transport: everything between the store's outbox/inbox ports and the
 * broker (protocol §5.2), or in-process delivery when no broker URL is configured.
 *
 * `start()` in AMQP mode:
 * - resolves once connected with the topology declared, **or** as soon as the
 *   first connection attempt fails (broker unreachable): the gateway keeps
 *   accepting into the outbox, recovery retries with backoff in the background
 *   and `status().connected` stays false until it succeeds;
 * - rejects with `TopologyError` (and leaves nothing running) when the broker
 *   refuses the topology, e.g. a queue exists with different arguments.
 * A topology refusal met later, on a background reconnect, halts that
 * component, is logged and reported through `events.topologyError`.
 */
import type { AuditActor } from '../audit/types.js';
import type { InboxPort, OutboxPort } from './ports.js';
import { AmqpConsumer } from './amqp-consumer.js';
import { AmqpRelay } from './amqp-relay.js';
import { EmbeddedDelivery } from './embedded.js';
import { silentLogger, type TransportEvents, type TransportLogger } from './events.js';
import { DEFAULT_DELIVERY_LIMIT, validateTopology, type TopologySpec } from './topology.js';

export type {
  TransportEvents,
  TransportLogger,
  RetryReason,
  ConsumeFailure,
  ConnectionState,
  Component,
} from './events.js';
export {
  TopologyError,
  type TopologyErrorCode,
  MESSAGES_EXCHANGE,
  DEAD_EXCHANGE,
  DEAD_QUEUE,
  DEFAULT_DELIVERY_LIMIT,
  inboxQueue,
  routingKey,
} from './topology.js';
export { HEADER_DIGEST, HEADER_FROM, HEADER_LOG_INDEX, JOSE_CONTENT_TYPE } from './amqp-relay.js';

export interface TransportOptions {
  /** Broker URL; unset = embedded delivery (protocol §8 `CASEBRIDGE_AMQP_URL`). */
  url?: string | undefined;
  /** Agencies whose inbox queues are declared and (with `consume`) consumed. */
  agencies: string[];
  outbox: OutboxPort;
  inbox: InboxPort;
  /** The actor of `message.queued` / `message.delivered` audit entries. */
  gatewayActor: AuditActor;
  events?: TransportEvents | undefined;
  logger?: TransportLogger | undefined;
  /** Published-but-unconfirmed messages, at most. Default 256. */
  inFlight?: number | undefined;
  /** Default 10 000. */
  confirmTimeoutMs?: number | undefined;
  /** Consumer prefetch per queue. Default 64. */
  prefetch?: number | undefined;
  /** Quorum queue `x-delivery-limit`. Default 5. */
  deliveryLimit?: number | undefined;
  /** Run the inbox consumer (AMQP mode). Default true. */
  consume?: boolean | undefined;
  /**
   * Agencies whose inbox queue their own AMQP clients read: declared, published
   * to, never consumed by the gateway (their messages stay `queued` here).
   */
  externalInboxes?: readonly string[] | undefined;
  /** Outbox poll period. Default 250 ms. */
  pollIntervalMs?: number | undefined;
  /** TCP connect timeout per attempt. Default 5 000. */
  connectTimeoutMs?: number | undefined;
}

export interface TransportStatus {
  mode: 'amqp' | 'embedded';
  /** AMQP: the relay has a live confirm channel (and the consumer, if any, is consuming). Embedded: running. */
  connected: boolean;
  inFlight: number;
  /** The broker blocked the publishing connection (resource alarm). */
  blocked: boolean;
}

export interface Transport {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** After a stop that took too long: drop broker connections at once (rows stay in the outbox). */
  abort(): void;
  kick(): void;
  status(): TransportStatus;
}

export function createTransport(opts: TransportOptions): Transport {
  const logger = opts.logger ?? silentLogger;
  const events = opts.events ?? {};
  if (opts.url === undefined || opts.url === '') return embeddedTransport(opts, logger, events);

  const topology: TopologySpec = {
    agencies: [...opts.agencies],
    deliveryLimit: opts.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
  };
  validateTopology(topology);
  const relay = new AmqpRelay({
    url: opts.url,
    outbox: opts.outbox,
    actor: opts.gatewayActor,
    topology,
    events,
    logger,
    inFlight: opts.inFlight,
    confirmTimeoutMs: opts.confirmTimeoutMs,
    pollIntervalMs: opts.pollIntervalMs,
    connectTimeoutMs: opts.connectTimeoutMs,
  });
  const consumer =
    opts.consume === false
      ? undefined
      : new AmqpConsumer({
          url: opts.url,
          inbox: opts.inbox,
          actor: opts.gatewayActor,
          agencies: opts.agencies.filter((a) => !(opts.externalInboxes ?? []).includes(a)),
          topology,
          events,
          logger,
          prefetch: opts.prefetch,
          connectTimeoutMs: opts.connectTimeoutMs,
        });

  return {
    async start() {
      // The relay declares the topology first, so a mismatch fails before the consumer starts.
      const how = await relay.start();
      if (how === 'retrying') {
        logger.warn(
          'broker unreachable at start; accepting into the outbox and retrying in the background',
          {
            component: 'transport',
          },
        );
      }
      if (consumer) {
        try {
          await consumer.start();
        } catch (err) {
          await relay.stop();
          throw err;
        }
      }
    },
    async stop() {
      await Promise.all([relay.stop(), consumer?.stop()]);
    },
    abort() {
      relay.abort();
      consumer?.abort();
    },
    kick() {
      relay.kick();
    },
    status() {
      return {
        mode: 'amqp',
        connected: relay.connected && (consumer === undefined || consumer.connected),
        inFlight: relay.inFlight,
        blocked: relay.blocked,
      };
    },
  };
}

function embeddedTransport(
  opts: TransportOptions,
  logger: TransportLogger,
  events: TransportEvents,
): Transport {
  const delivery = new EmbeddedDelivery({
    outbox: opts.outbox,
    inbox: opts.inbox,
    actor: opts.gatewayActor,
    events,
    logger,
    inFlight: opts.inFlight,
    pollIntervalMs: opts.pollIntervalMs,
    deliveryLimit: opts.deliveryLimit,
  });
  let running = false;
  return {
    async start() {
      await delivery.start();
      running = true;
    },
    async stop() {
      running = false;
      await delivery.stop();
    },
    abort() {
      // In process there is nothing to cut: the store closes next and refuses what is left.
      running = false;
    },
    kick() {
      delivery.kick();
    },
    status() {
      return { mode: 'embedded', connected: running, inFlight: delivery.inFlight, blocked: false };
    },
  };
}
