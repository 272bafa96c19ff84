/**
 * protocol §5.2 broker topology. Declared on every (re)connect; idempotent.
 *
 * Each queue is declared on its own throwaway channel: a queue that exists with
 * different arguments makes the broker close the channel with 406
 * PRECONDITION_FAILED, and that must become one typed error, not a loop.
 */
import type { Channel, ChannelModel } from 'amqplib';

export const MESSAGES_EXCHANGE = 'casebridge.messages';
export const DEAD_EXCHANGE = 'casebridge.dead';
export const DEAD_QUEUE = 'casebridge.dead';
export const DEFAULT_DELIVERY_LIMIT = 5;

/** protocol §1.3 agency ids; they become queue names and routing keys. */
const AGENCY_ID = /^[A-Z]{2}(-[A-Z0-9]{1,12}){1,4}$/;

/** AMQP 0-9-1 reply codes (spec §1.9, "constants"). */
const ACCESS_REFUSED = 403;
const NOT_FOUND = 404;
const RESOURCE_LOCKED = 405;
const PRECONDITION_FAILED = 406;

export function inboxQueue(agencyId: string): string {
  return `casebridge.inbox.${agencyId}`;
}

export function routingKey(to: string, type: string): string {
  return `${to}.${type}`;
}

export type TopologyErrorCode = 'TOPOLOGY_MISMATCH' | 'TOPOLOGY_REFUSED' | 'TOPOLOGY_INVALID';

export class TopologyError extends Error {
  readonly code: TopologyErrorCode;
  /** The exchange or queue concerned. */
  readonly resource: string;
  /** The argument the broker reports as different (e.g. `x-queue-type`), when it names one. */
  readonly argument: string | undefined;
  /** The AMQP reply code, when the broker refused. */
  readonly replyCode: number | undefined;

  constructor(
    code: TopologyErrorCode,
    resource: string,
    detail: string,
    options?: { argument?: string | undefined; replyCode?: number | undefined; cause?: unknown },
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TopologyError';
    this.code = code;
    this.resource = resource;
    this.argument = options?.argument;
    this.replyCode = options?.replyCode;
  }
}

export interface TopologySpec {
  agencies: readonly string[];
  deliveryLimit: number;
}

export function validateTopology(spec: TopologySpec): void {
  for (const a of spec.agencies) {
    if (!AGENCY_ID.test(a)) {
      throw new TopologyError(
        'TOPOLOGY_INVALID',
        inboxQueue(a),
        `agency id ${JSON.stringify(a)} is not a protocol §1.3 id`,
      );
    }
  }
  if (!Number.isInteger(spec.deliveryLimit) || spec.deliveryLimit < 1) {
    throw new TopologyError(
      'TOPOLOGY_INVALID',
      'x-delivery-limit',
      `delivery limit must be a positive integer`,
    );
  }
}

/** The arguments every inbox queue carries; exported so tests and tools agree. */
export function inboxQueueArguments(deliveryLimit: number): Record<string, string | number> {
  return {
    'x-queue-type': 'quorum',
    'x-dead-letter-exchange': DEAD_EXCHANGE,
    'x-delivery-limit': deliveryLimit,
  };
}

/** Declares everything of protocol §5.2. Throws TopologyError on any refusal. */
export async function declareTopology(model: ChannelModel, spec: TopologySpec): Promise<void> {
  validateTopology(spec);
  await onThrowawayChannel(model, MESSAGES_EXCHANGE, 'exchange', (ch) =>
    ch.assertExchange(MESSAGES_EXCHANGE, 'topic', { durable: true }),
  );
  await onThrowawayChannel(model, DEAD_EXCHANGE, 'exchange', (ch) =>
    ch.assertExchange(DEAD_EXCHANGE, 'fanout', { durable: true }),
  );
  await onThrowawayChannel(model, DEAD_QUEUE, 'queue', async (ch) => {
    await ch.assertQueue(DEAD_QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.bindQueue(DEAD_QUEUE, DEAD_EXCHANGE, '');
  });
  for (const agency of spec.agencies) {
    const q = inboxQueue(agency);
    await onThrowawayChannel(model, q, 'queue', async (ch) => {
      await ch.assertQueue(q, {
        durable: true,
        arguments: inboxQueueArguments(spec.deliveryLimit),
      });
      await ch.bindQueue(q, MESSAGES_EXCHANGE, `${agency}.#`);
    });
  }
}

async function onThrowawayChannel(
  model: ChannelModel,
  resource: string,
  kind: 'exchange' | 'queue',
  op: (ch: Channel) => Promise<unknown>,
): Promise<void> {
  const ch = await model.createChannel();
  // The server-side close is also emitted as 'error'; the rejected RPC carries it to us.
  ch.on('error', () => {});
  let closedByServer = false;
  ch.prependListener('close', () => {
    closedByServer = true;
  });
  try {
    await op(ch);
  } catch (err) {
    throw toTopologyError(err, resource, kind);
  }
  if (!closedByServer) await ch.close().catch(() => {});
}

function toTopologyError(err: unknown, resource: string, kind: 'exchange' | 'queue'): Error {
  const replyCode = (err as { code?: unknown }).code;
  if (typeof replyCode !== 'number') return err instanceof Error ? err : new Error(String(err)); // connection-level: not ours
  // The broker's reply text is the only place naming the argument; we use it for the
  // operator's message only, never to decide what kind of failure this is.
  const text = err instanceof Error ? err.message : '';
  const argument = /inequivalent arg '([^']+)'/.exec(text)?.[1];
  if (replyCode === PRECONDITION_FAILED) {
    return new TopologyError(
      'TOPOLOGY_MISMATCH',
      resource,
      `${kind} ${resource} exists with different arguments (${argument ?? 'see broker log'})`,
      { argument, replyCode, cause: err },
    );
  }
  const why =
    replyCode === ACCESS_REFUSED
      ? 'access refused'
      : replyCode === RESOURCE_LOCKED
        ? 'locked by another connection'
        : replyCode === NOT_FOUND
          ? 'not found'
          : `refused with ${replyCode}`;
  return new TopologyError('TOPOLOGY_REFUSED', resource, `${kind} ${resource}: ${why}`, {
    replyCode,
    cause: err,
  });
}
