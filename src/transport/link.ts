/**
 * One self-healing broker connection, built on amqplib 2.x connection recovery.
 * Channels are not recovered by amqplib: `onConnect` rebuilds them on every
 * new connection. A TopologyError from `onConnect` is fatal: the link stops
 * instead of reconnecting forever against a broker that will refuse again.
 */
import { connect, type ChannelModel, type RecoveringChannelModel } from 'amqplib';
import { backoffDelay, sleep } from './backoff.js';
import {
  emit,
  errorText,
  type Component,
  type TransportEvents,
  type TransportLogger,
} from './events.js';
import { TopologyError } from './topology.js';

export interface LinkHooks {
  /** Build channels and consumers on a fresh connection. */
  onConnect(model: ChannelModel): Promise<void>;
  /** The connection is gone (channels with it). */
  onDisconnect(): void;
  onBlocked?(blocked: boolean): void;
}

export interface LinkOptions {
  url: string;
  component: Component;
  events: TransportEvents;
  logger: TransportLogger;
  /** TCP connect timeout for each attempt. */
  connectTimeoutMs: number;
}

/**
 * How `start()` ended: `ready` = connected with topology declared;
 * `retrying` = the broker was unreachable, recovery continues in the background.
 */
export type LinkStart = 'ready' | 'retrying';

export class BrokerLink {
  private rec: RecoveringChannelModel | undefined;
  private model: ChannelModel | undefined;
  private stopped = false;
  private setupFailures = 0;
  private startWaiter: { resolve(v: LinkStart): void; reject(e: Error): void } | undefined;
  connected = false;
  blocked = false;
  /** Set when the link halted on a topology error after start. */
  fatal: TopologyError | undefined;

  constructor(
    private readonly opts: LinkOptions,
    private readonly hooks: LinkHooks,
  ) {}

  async start(): Promise<LinkStart> {
    // A link may be started again after stop().
    this.stopped = false;
    this.fatal = undefined;
    const { url, connectTimeoutMs } = this.opts;
    const result = new Promise<LinkStart>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
    });
    this.rec = await connect(url, {
      timeout: connectTimeoutMs,
      clientProperties: { connection_name: `casebridge-${this.opts.component}` },
      recovery: {
        initialDelay: 250,
        maxDelay: 30_000,
        factor: 2,
        jitter: 0.3,
        waitForConnect: false,
      },
    });
    const rec = this.rec;
    rec.on('connect', (model: ChannelModel) => void this.onConnect(model));
    rec.on('disconnect', (err: Error) => this.onDisconnect(err));
    rec.on('connect-failed', (err: Error) => this.onConnectFailed(err));
    rec.on('reconnect-scheduled', (info: { attempt: number; delay: number }) =>
      this.log('info', 'broker reconnect scheduled', {
        attempt: info.attempt,
        delayMs: info.delay,
      }),
    );
    rec.on('blocked', (reason: string) => this.setBlocked(true, reason));
    rec.on('unblocked', () => this.setBlocked(false));
    // Without a listener an 'error' event would throw; the close that follows drives recovery.
    rec.on('error', (err: Error) =>
      this.log('warn', 'broker connection error', { error: errorText(err) }),
    );
    return result;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.settleStart('retrying');
    const rec = this.rec;
    this.rec = undefined;
    this.model = undefined;
    this.connected = false;
    if (rec) await rec.close().catch(() => {});
  }

  /**
   * Stops without the close handshake: the socket is destroyed at once. For a
   * shutdown that cannot wait, e.g. while a broker alarm blocks the connection
   * and no close frame would be read.
   */
  abort(): void {
    this.stopped = true;
    this.settleStart('retrying');
    const rec = this.rec;
    const model = this.model;
    this.rec = undefined;
    this.model = undefined;
    this.connected = false;
    // close() stops recovery; its handshake ends when the socket below is gone.
    if (rec) void rec.close().catch(() => {});
    const socket = (model?.connection as { stream?: { destroy(): void } } | undefined)?.stream;
    socket?.destroy();
  }

  private async onConnect(model: ChannelModel): Promise<void> {
    if (this.stopped) return;
    this.model = model;
    this.connected = true;
    this.blocked = false;
    this.log('info', 'broker connected');
    emit(this.opts.events, this.opts.logger, 'connection', this.opts.component, 'connected');
    try {
      await this.hooks.onConnect(model);
      this.setupFailures = 0;
      this.settleStart('ready');
    } catch (err) {
      if (err instanceof TopologyError) {
        this.fatal = err;
        this.log('error', 'broker topology refused; transport halted', {
          code: err.code,
          resource: err.resource,
          argument: err.argument,
          error: err.message,
        });
        emit(this.opts.events, this.opts.logger, 'topologyError', err);
        const waiter = this.startWaiter;
        this.startWaiter = undefined;
        await this.stop();
        waiter?.reject(err);
        return;
      }
      if (this.model !== model || this.stopped) return; // the connection died under us; recovery handles it
      // Something else failed on a live connection: drop it and let recovery reconnect,
      // after our own backoff so a persistent failure cannot spin.
      this.setupFailures++;
      const delay = backoffDelay(this.setupFailures);
      this.log('warn', 'channel setup failed; reconnecting', {
        error: errorText(err),
        delayMs: delay,
      });
      await sleep(delay);
      if (this.model === model && !this.stopped) await model.close().catch(() => {});
    }
  }

  private onDisconnect(err: Error): void {
    this.model = undefined;
    this.connected = false;
    if (this.blocked) this.setBlocked(false);
    this.log('warn', 'broker connection lost', { error: errorText(err) });
    emit(this.opts.events, this.opts.logger, 'connection', this.opts.component, 'disconnected');
    this.hooks.onDisconnect();
  }

  private onConnectFailed(err: Error): void {
    this.log('warn', 'broker connection attempt failed', { error: errorText(err) });
    emit(this.opts.events, this.opts.logger, 'connection', this.opts.component, 'connect-failed');
    this.settleStart('retrying');
  }

  private setBlocked(blocked: boolean, reason?: string): void {
    this.blocked = blocked;
    this.log(
      blocked ? 'warn' : 'info',
      blocked ? 'broker blocked the connection' : 'broker unblocked the connection',
      {
        ...(reason === undefined ? {} : { reason }),
      },
    );
    emit(
      this.opts.events,
      this.opts.logger,
      'connection',
      this.opts.component,
      blocked ? 'blocked' : 'unblocked',
    );
    this.hooks.onBlocked?.(blocked);
  }

  private settleStart(how: LinkStart): void {
    const w = this.startWaiter;
    this.startWaiter = undefined;
    w?.resolve(how);
  }

  private log(
    level: 'info' | 'warn' | 'error',
    msg: string,
    meta: Record<string, unknown> = {},
  ): void {
    this.opts.logger[level](msg, { component: this.opts.component, ...meta });
  }
}
