/**
 * Change events across gateways (protocol §5.5): each write transaction NOTIFYs
 * its changes (ids, types, agencies and statuses; never content) on
 * `casebridge_changes`, delivered by PostgreSQL at its commit only. Each store
 * LISTENs on a connection of its own and passes on the changes of other origins;
 * its own it publishes directly after the commit.
 */
import pg from 'pg';
import type { MessageChange } from '../../messages/types.js';
import { clientConfig } from './pool.js';
import { CHANGES_CHANNEL } from './tx.js';

const RECONNECT_MS = 1000;

export class ChangeListenerConnection {
  private client: pg.Client | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /** Set once the connection was lost: the next one listens again after a gap. */
  private gap = false;

  constructor(
    private readonly url: string,
    private readonly origin: string,
    private readonly publish: (changes: readonly MessageChange[]) => void,
    /** Listening again after a loss: what was NOTIFYed in between is gone. */
    private readonly resumed: () => void = () => undefined,
  ) {}

  /** Connects and listens; a failure here fails the start. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(clientConfig(this.url));
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL && n.payload !== undefined) this.received(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.gap) {
      this.gap = false;
      this.resumed();
    }
  }

  private received(payload: string): void {
    let msg: { o?: unknown; c?: unknown };
    try {
      msg = JSON.parse(payload) as { o?: unknown; c?: unknown };
    } catch {
      return;
    }
    if (msg.o === this.origin || !Array.isArray(msg.c)) return;
    this.publish(msg.c as MessageChange[]);
  }

  /** The connection went away: listen again once the server is back (changes meanwhile are missed). */
  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.gap = true;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.connect().catch(() => this.retry());
    }, RECONNECT_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}
