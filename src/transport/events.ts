/**
 * What the transport reports to the outside (metrics, logs). Every callback is
 * optional; the transport never lets a throwing callback disturb delivery.
 */

/** Why a publish or delivery attempt is retried later. */
export type RetryReason =
  | 'nack' // the broker refused the message (basic.nack)
  | 'returned' // unroutable: basic.return before the ack (mandatory)
  | 'confirm-timeout' // no confirm within confirmTimeoutMs
  | 'channel-closed' // channel or connection went away with the message unconfirmed
  | 'publish-error' // publish threw synchronously
  | 'mark-failed' // the store refused markQueued (embedded mode)
  | 'deliver-failed' // the store's deliver threw (embedded mode)
  | 'unknown-message'; // the store knows no message with this id and digest (embedded mode)

/** Why the consumer gave a delivery back to the broker (nack, requeue). */
export type ConsumeFailure = 'malformed' | 'digest-mismatch' | 'unknown' | 'deliver-failed';

export type Component = 'relay' | 'consumer';

export type ConnectionState =
  'connected' | 'disconnected' | 'connect-failed' | 'blocked' | 'unblocked';

export interface TransportEvents {
  /** One message handed to the broker (or, embedded, to the in-process inbox). */
  published?(messageId: string): void;
  /** `count` outbox rows were marked queued in one store call. */
  confirmed?(count: number): void;
  /** One attempt failed and the row is rescheduled with backoff. */
  retried?(reason: RetryReason, messageId: string): void;
  /** The broker returned a mandatory message as unroutable. */
  returned?(messageId: string): void;
  /** A message that keeps failing was given up: dead-lettered by the broker (AMQP) or dropped from retries (embedded). */
  poison?(messageId: string | undefined, reason: ConsumeFailure): void;
  /** The consumer gave a delivery back (nack, requeue) for this reason. */
  rejected?(messageId: string | undefined, reason: ConsumeFailure): void;
  /** Connection state changes per component. */
  connection?(component: Component, state: ConnectionState): void;
  /** A message reached its recipient's inbox. */
  delivered?(messageId: string): void;
  /** A redelivery of a message already in the inbox (acked, not stored twice). */
  duplicate?(messageId: string): void;
  /** The broker's topology differs from protocol §5.2; the component halted. */
  topologyError?(err: Error): void;
}

export interface TransportLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export const silentLogger: TransportLogger = {
  info() {},
  warn() {},
  error() {},
};

type Callback = (...args: never[]) => void;

/** Calls one optional event callback, swallowing (and logging) what it throws. */
export function emit<K extends keyof TransportEvents>(
  events: TransportEvents,
  logger: TransportLogger,
  name: K,
  ...args: Parameters<NonNullable<TransportEvents[K]>>
): void {
  const cb = events[name] as Callback | undefined;
  if (cb === undefined) return;
  try {
    (cb as (...a: unknown[]) => void).apply(events, args);
  } catch (err) {
    logger.warn('transport event callback threw', { event: name, error: errorText(err) });
  }
}

/** A short, content-free description of an error for logs. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code === undefined ? err.message : `${err.message} (code ${String(code)})`;
  }
  return String(err);
}
