/**
 * The container deployment, checked as far as a machine without a Docker engine
 * allows: the Dockerfile lints clean and copies only what exists (after
 * `npm run build`, which `npm test` runs first), deploy/compose.yaml is valid for
 * docker-compose, and everything it hands the gateway is something the gateway knows.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { validate } from 'dockerfile-utils';
import { inboxQueueArguments } from '../../src/transport/topology.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');

interface Instruction {
  keyword: string;
  args: string[];
  /** Flags such as `--from=build`, by name. */
  flags: Record<string, string>;
  line: number;
}

interface Stage {
  name: string | undefined;
  workdir: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuations joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i]!;
    if (/^\s*(#|$)/.test(logical)) continue;
    while (logical.endsWith('\\') && i + 1 < lines.length) {
      logical = logical.slice(0, -1) + ' ' + lines[++i]!;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(logical)!;
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
    const flags: Record<string, string> = {};
    const args: string[] = [];
    for (const w of words) {
      const f = /^--([a-z-]+)(?:=(.*))?$/.exec(w);
      if (f !== null && args.length === 0) flags[f[1]!] = f[2] ?? '';
      else args.push(w);
    }
    const ins = { keyword, args, flags, line: start + 1 };
    if (keyword === 'FROM') {
      const as = args.findIndex((a) => a.toUpperCase() === 'AS');
      stages.push({ name: as >= 0 ? args[as + 1] : undefined, workdir: '/', instructions: [] });
    }
    const stage = stages.at(-1);
    if (stage === undefined) continue; // parser directives / ARG before the first FROM
    if (keyword === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, args[0]!);
    stage.instructions.push(ins);
  }
  return stages;
}

/** Plain (non-glob) .dockerignore entries: whole paths the build context leaves out. */
function ignoredPaths(): string[] {
  return read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !/[*?[!]/.test(l));
}

/** `CASEBRIDGE_*` names the configuration reads: the string literals of src/config. */
function knownVariables(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/['"`](CASEBRIDGE_[A-Z0-9_]+)['"`]/g))
          names.add(m[1]!);
    }
  };
  walk(join(ROOT, 'src/config'));
  return names;
}

/**
 * Variables the compose file sets ahead of the code that reads them: the PostgreSQL
 * store of issue 11 is written alongside this deployment. Tolerated only while
 * src/config does not know them yet; drop an entry once it lands.
 */
const AHEAD_OF_CODE = new Set<string>([]);

const DOCKERFILE = read('Dockerfile');
const STAGES = parseDockerfile(DOCKERFILE);
const COMPOSE = read('deploy/compose.yaml');
const GATEWAY_ENV = read('deploy/gateway.env');

/** The top-level blocks of `services:` in deploy/compose.yaml, by service name. */
function composeServices(): Map<string, string> {
  const block = COMPOSE.slice(COMPOSE.indexOf('\nservices:\n'), COMPOSE.indexOf('\nvolumes:\n'));
  const services = new Map<string, string>();
  const heads = [...block.matchAll(/^ {2}([a-z0-9-]+):$/gm)];
  heads.forEach((h, i) =>
    services.set(h[1]!, block.slice(h.index, heads[i + 1]?.index ?? block.length)),
  );
  return services;
}

/** The value gateway.env gives a variable. */
function gatewayEnv(name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(GATEWAY_ENV)?.[1]?.trim();
}

/** Runs the image's HEALTHCHECK command here, in the environment given; its exit code. */
function runHealthcheck(env: Record<string, string>): Promise<number | null> {
  // The exec form, read from the text: the instruction parser splits it at spaces.
  const form = /^HEALTHCHECK\b(?:.*\\\n)*.*?\bCMD (\[.*\])$/m.exec(DOCKERFILE)?.[1];
  const cmd = JSON.parse(form ?? '[]') as string[];
  expect(cmd[0]).to.equal('node');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cmd.slice(1), {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

describe('deployment: Dockerfile', () => {
  it('lints clean with dockerfile-utils', () => {
    const problems = validate(DOCKERFILE).map(
      (d) => `line ${d.range.start.line + 1}: ${d.message}`,
    );
    expect(problems).to.deep.equal([]);
  });

  it('the linter does report a broken Dockerfile (so a clean result means something)', () => {
    const problems = validate('FROM node:20\nCOPY only-one-argument\nWORKDIR relative\n');
    expect(problems.map((d) => d.message)).to.have.length.greaterThan(1);
  });

  it('builds in one stage what `npm run build` builds, and runs it there', () => {
    expect(STAGES).to.have.length.greaterThan(1);
    const build = STAGES[0]!;
    const copied = build.instructions
      .filter((i) => i.keyword === 'COPY' && i.flags['from'] === undefined)
      .flatMap((i) => i.args.slice(0, -1));
    const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
    const roots = new Set(tsconfig.include.map((g) => g.split('/')[0]!));
    for (const needed of [...roots, 'tsconfig.json', 'package.json', 'package-lock.json'])
      expect(copied, `build stage copies ${needed}`).to.include(needed);
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.join(' '));
    expect(runs.some((r) => r.includes('npm ci'))).to.equal(true);
    expect(runs.some((r) => r.includes('npm run build'))).to.equal(true);
    expect(
      runs.some((r) => /npm prune --omit=dev/.test(r)),
      'dev dependencies pruned',
    ).to.equal(true);
  });

  it('copies only paths that exist, from the build context and from the build stage', () => {
    const ignored = ignoredPaths();
    const missing: string[] = [];
    for (const stage of STAGES) {
      for (const ins of stage.instructions.filter((i) => ['COPY', 'ADD'].includes(i.keyword))) {
        const from = ins.flags['from'];
        for (const src of ins.args.slice(0, -1)) {
          let rel: string;
          if (from === undefined) {
            rel = src;
            const hit = ignored.find((p) => rel === p || rel.startsWith(p.replace(/\/?$/, '/')));
            expect(hit, `line ${ins.line}: ${rel} is left out by .dockerignore`).to.equal(
              undefined,
            );
          } else {
            // A path in an earlier stage: the repository path that stage's build made it from.
            const stage = STAGES.find((s) => s.name === from);
            expect(stage, `line ${ins.line}: stage ${from}`).to.not.equal(undefined);
            rel = posix.relative(stage!.workdir, posix.resolve(stage!.workdir, src));
            if (rel.startsWith('node_modules')) continue; // installed by `npm ci` in that stage
          }
          if (!existsSync(join(ROOT, rel))) missing.push(`line ${ins.line}: ${src}`);
        }
      }
    }
    expect(missing).to.deep.equal([]);
  });

  it('runs as a non-root user with what the gateway reads at run time, and no tests', () => {
    const final = STAGES.at(-1)!;
    const user = final.instructions.filter((i) => i.keyword === 'USER').at(-1);
    expect(user?.args[0])
      .to.be.a('string')
      .and.not.match(/^(root|0)(:|$)/);
    // A destination ending in `/` (or `.`) is a directory the sources are copied into.
    const targets = final.instructions
      .filter((i) => i.keyword === 'COPY')
      .flatMap((i) => {
        const dest = i.args.at(-1)!;
        const into = dest.endsWith('/') || dest === '.';
        return i.args
          .slice(0, -1)
          .map((src) =>
            posix.resolve(final.workdir, into ? posix.join(dest, posix.basename(src)) : dest),
          );
      });
    // SCHEMA_DIR and CONSOLE_ASSET_DIR resolve from dist/src to these; bin/ is the entry point.
    for (const p of ['dist/src', 'dist/console', 'schemas', 'bin', 'package.json', 'node_modules'])
      expect(targets, p).to.include(posix.join(final.workdir, p));
    for (const t of targets) expect(t).to.not.match(/\/(test|bench|dist\/test|dist\/bench)$/);
    const entry = final.instructions.find((i) => i.keyword === 'ENTRYPOINT')!;
    expect(existsSync(join(ROOT, entry.args[1]!))).to.equal(true);
    const health = final.instructions.find((i) => i.keyword === 'HEALTHCHECK')!;
    expect(health.args.join(' ')).to.include('/healthz');
  });

  it('leaves the admin port on loopback: only a deployment on a private network widens it', () => {
    const env = STAGES.at(-1)!
      .instructions.filter((i) => i.keyword === 'ENV')
      .flatMap((i) => i.args);
    expect(env.filter((a) => a.startsWith('CASEBRIDGE_ADMIN_HOST='))).to.deep.equal([]);
    const exposed = STAGES.at(-1)!
      .instructions.filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.map((a) => a.split('/')[0]!));
    expect(exposed).to.include('8443');
    expect(exposed).to.not.include(gatewayEnv('CASEBRIDGE_ADMIN_PORT') ?? '9464');
  });

  it('HEALTHCHECK asks /healthz at the configured admin address, loopback for a wildcard', async () => {
    const asked: string[] = [];
    const server = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.statusCode = req.url === '/healthz' ? 200 : 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = String((server.address() as AddressInfo).port);
    try {
      expect(await runHealthcheck({ CASEBRIDGE_ADMIN_PORT: port })).to.equal(0);
      expect(
        await runHealthcheck({ CASEBRIDGE_ADMIN_PORT: port, CASEBRIDGE_ADMIN_HOST: '0.0.0.0' }),
      ).to.equal(0);
      expect(
        await runHealthcheck({ CASEBRIDGE_ADMIN_PORT: port, CASEBRIDGE_ADMIN_HOST: '127.0.0.1' }),
      ).to.equal(0);
      expect(asked).to.deep.equal(['/healthz', '/healthz', '/healthz']);
      // Nothing listens on the address it was told: unhealthy, not a hang or a pass.
      expect(
        await runHealthcheck({ CASEBRIDGE_ADMIN_PORT: port, CASEBRIDGE_ADMIN_HOST: '127.0.0.2' }),
      ).to.equal(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    // A closed port is unhealthy too.
    expect(await runHealthcheck({ CASEBRIDGE_ADMIN_PORT: port })).to.equal(1);
  });
});

describe('deployment: deploy/compose.yaml', () => {
  let pki: string;
  before(() => {
    pki = mkdtempSync(join(tmpdir(), 'casebridge-deploy-'));
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'dist/src/cli/main.js'), 'init-dev', '--out', join(pki, 'pki')],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).to.equal(0);
  });
  after(() => rmSync(pki, { recursive: true, force: true }));

  it('is valid for docker-compose (`config -q`)', function () {
    const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
    if (probe.error !== undefined) {
      console.log(
        '      skipped: no docker-compose binary (.ci/run installs Debian docker-compose)',
      );
      this.skip();
    }
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: pki,
      DB_PASSWORD: 'test',
      AMQP_PASSWORD: 'test',
      PKI_DIR: join(pki, 'pki'),
      ERLANG_COOKIE_FILE: join(pki, 'cookie'),
    };
    const ok = spawnSync('docker-compose', ['-f', 'deploy/compose.yaml', 'config', '-q'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    expect(ok.status, ok.stderr).to.equal(0);
    // A required secret left unset stops it: the file is really being checked.
    const unset = spawnSync('docker-compose', ['-f', 'deploy/compose.yaml', 'config', '-q'], {
      cwd: ROOT,
      env: { ...env, DB_PASSWORD: '' },
      encoding: 'utf8',
    });
    expect(unset.status).to.not.equal(0);
    expect(unset.stderr).to.include('DB_PASSWORD');
  });

  it('gives the gateway only variables its configuration knows', () => {
    const known = knownVariables();
    expect(known.size, 'src/config names its variables').to.be.greaterThan(20);
    const given = new Set<string>();
    for (const text of [COMPOSE, read('deploy/gateway.env')])
      for (const m of text.matchAll(/^\s*(CASEBRIDGE_[A-Z0-9_]+)\s*[:=]/gm)) given.add(m[1]!);
    for (const ins of STAGES.at(-1)!.instructions.filter((i) => i.keyword === 'ENV'))
      for (const a of ins.args) if (a.startsWith('CASEBRIDGE_')) given.add(a.split('=')[0]!);
    expect(given.size).to.be.greaterThan(10);
    const unknown = [...given].filter((v) => !known.has(v) && !AHEAD_OF_CODE.has(v));
    expect(unknown).to.deep.equal([]);
    for (const v of AHEAD_OF_CODE)
      if (!known.has(v)) console.log(`      note: ${v} is set ahead of the code that reads it`);
  });

  it('mounts secrets in the layout `casebridge init-dev` writes, and files that exist', () => {
    const secrets = [...COMPOSE.matchAll(/file: \$\{PKI_DIR:-\.\/pki\}\/(\S+)/g)].map((m) => m[1]!);
    expect(secrets).to.include.members([
      'gateway/gateway.key.pem',
      'log/log.key.pem',
      'data/data.key.pem',
    ]);
    for (const s of secrets) expect(existsSync(join(pki, 'pki', s)), s).to.equal(true);
    const mounted = [...COMPOSE.matchAll(/^\s*- (\.\/[^:\s]+):/gm)].map((m) => m[1]!);
    mounted.push(...[...COMPOSE.matchAll(/env_file: (\S+)/g)].map((m) => m[1]!));
    expect(mounted.length).to.be.greaterThan(3);
    for (const f of mounted) expect(existsSync(join(ROOT, 'deploy', f)), f).to.equal(true);
  });

  it('balances onto services and ports that exist, and clusters the RabbitMQ nodes it runs', () => {
    const services = composeServices();
    const cfg = read('deploy/haproxy/haproxy.cfg');
    const servers = [...cfg.matchAll(/^\s*server \S+ ([^:\s]+):(\d+)(.*)$/gm)];
    expect(servers).to.have.length(5);
    for (const s of servers) expect([...services.keys()], s[1]).to.include(s[1]!);
    // The gateways: the API port they listen on, checked on the admin port they listen on.
    const gateways = servers.filter((s) => /^gateway-\d$/.test(s[1]!));
    expect(gateways).to.have.length(2);
    for (const g of gateways) {
      expect(g[2], `${g[1]} API port`).to.equal(gatewayEnv('CASEBRIDGE_PORT'));
      expect(/\bcheck port (\d+)\b/.exec(g[3]!)?.[1], `${g[1]} check port`).to.equal(
        gatewayEnv('CASEBRIDGE_ADMIN_PORT'),
      );
    }
    expect(cfg).to.match(/http-check send meth GET uri \/readyz\b/);
    const rabbit = [...services.keys()].filter((s) => /^rabbitmq-\d$/.test(s));
    expect(rabbit).to.have.length(3);
    for (const s of servers.filter((s) => rabbit.includes(s[1]!))) expect(s[2]).to.equal('5672');
    const conf = read('deploy/rabbitmq/rabbitmq.conf');
    for (const r of rabbit) expect(conf).to.include(`= rabbit@${r}`);
    // The cluster is there for quorum queues, which the gateway declares itself.
    expect(inboxQueueArguments(5)['x-queue-type']).to.equal('quorum');
    expect([...services.keys()].filter((s) => /^gateway-\d$/.test(s))).to.have.length(2);
  });

  it('opens the admin port to the compose network, and never publishes it on the host', () => {
    const admin = gatewayEnv('CASEBRIDGE_ADMIN_PORT');
    expect(admin).to.match(/^\d+$/);
    // The gateways listen on every interface of their container (the image keeps loopback).
    expect(COMPOSE).to.match(/^\s*CASEBRIDGE_ADMIN_HOST: "?0\.0\.0\.0"?$/m);
    expect(gatewayEnv('CASEBRIDGE_ADMIN_HOST')).to.equal(undefined); // one place only
    const services = composeServices();
    for (const [name, block] of services) {
      // Each gateway is on the compose network itself: no namespace borrowed from a forwarder.
      expect(block, name).to.not.match(/network_mode:/);
      const ports = /^ {4}ports:\n((?: {6}- .*\n)+)/m.exec(block)?.[1] ?? '';
      const published = [...ports.matchAll(/- "?([^"\n]+)"?/g)].map((m) => m[1]!);
      for (const p of published)
        expect(p.split(':').at(-1)!.split('/')[0], `${name} publishes ${p}`).to.not.equal(admin);
    }
    expect([...services.keys()].some((s) => /-net$/.test(s))).to.equal(false);
    expect(existsSync(join(ROOT, 'deploy/haproxy/admin-forward.cfg'))).to.equal(false);
  });
});
