/**
 * A start that fails half-way (the admin port is taken) leaves nothing open: the
 * API port is released and the broker connections are closed (protocol §8: one
 * line naming the variable, nothing left running).
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server } from 'node:net';
import { startGateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/ops/logger.js';
import { createTestVhost, eventually, rabbitmqctl, type TestVhost } from '../helpers/amqp.js';
import { freePort, testEnv } from '../helpers/gateway.js';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('gateway start: a failed listen closes what was opened', function () {
  this.timeout(60_000);
  let vhost: TestVhost;
  let blocker: Server;
  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    blocker?.close();
    await vhost.cleanup();
  });

  it('rejects with a ConfigError naming CASEBRIDGE_ADMIN_PORT; API port and broker connections released', async () => {
    const adminPort = await freePort();
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(adminPort, '127.0.0.1', r));
    const port = await freePort();
    const env = await testEnv({
      CASEBRIDGE_AMQP_URL: vhost.url,
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(adminPort),
    });
    await assert.rejects(
      startGateway({ config: loadConfig(env), logger: createLogger('error', true) }),
      (e: unknown) => e instanceof ConfigError && e.variable === 'CASEBRIDGE_ADMIN_PORT',
    );
    assert.ok(await refused(port), 'the API port is released');
    await eventually(
      async () =>
        (await rabbitmqctl('list_connections', '-q', 'vhost')).includes(vhost.name) === false,
      20_000,
      'no broker connection left on the vhost',
    );
  });
});
