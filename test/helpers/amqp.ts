/**
 * Real-broker test helpers: every test gets its own vhost (rascal-style
 * namespacing), created and removed with `rabbitmqctl`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { promisify } from 'node:util';
import { connect, type GetMessage } from 'amqplib';

const run = promisify(execFile);

export const BROKER_HOST = process.env['CASEBRIDGE_TEST_AMQP_HOST'] ?? '127.0.0.1';
export const BROKER_PORT = Number(process.env['CASEBRIDGE_TEST_AMQP_PORT'] ?? 5672);

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

export interface TestVhost {
  url: string;
  name: string;
  cleanup(): Promise<void>;
}

export async function createTestVhost(): Promise<TestVhost> {
  const name = `cb-test-${randomBytes(6).toString('hex')}`;
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  return {
    name,
    url: `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/${encodeURIComponent(name)}`,
    async cleanup() {
      await rabbitmqctl('delete_vhost', name).catch(() => {});
    },
  };
}

/** Resolves once the AMQP port accepts TCP connections (after `start_app`). */
export async function waitForPort(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(BROKER_PORT, BROKER_HOST);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`broker port ${BROKER_PORT} still closed after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `rabbitmqctl stop_app`: the whole broker goes away (every vhost). */
export async function stopBroker(): Promise<void> {
  await rabbitmqctl('stop_app');
}

export async function startBroker(): Promise<void> {
  await rabbitmqctl('start_app');
  await waitForPort();
}

/**
 * Reads every message currently in `queue` without consuming it: got without
 * ack on a throwaway channel, then requeued by closing the channel.
 */
export async function peekQueue(url: string, queue: string): Promise<GetMessage[]> {
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    const out: GetMessage[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: false });
      if (m === false) break;
      out.push(m);
    }
    await ch.close();
    return out;
  } finally {
    await conn.close();
  }
}

/** Message count of a queue (passive declare). */
export async function queueDepth(url: string, queue: string): Promise<number> {
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    const { messageCount } = await ch.checkQueue(queue);
    await ch.close();
    return messageCount;
  } finally {
    await conn.close();
  }
}

/** Polls `check` until it returns true. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
