/**
 * The typed casebridge client: everything an agency system, an officer's tool or an
 * auditor's script does over the HTTPS API (protocol §3, §5, §6.4), with mutual TLS.
 * The CLI is built on it.
 */
import { createPrivateKey, randomUUID } from 'node:crypto';
import { request, Agent } from 'node:https';
import { signMessage } from '../envelope/sign.js';
import type { DecisionStatus, Envelope, MessageType, Priority } from '../envelope/types.js';
import { parsePemChain } from '../pki/pem.js';
import { ApiError, TransportError, type ProblemBody } from './errors.js';
import type { InclusionProof } from './verify.js';

export interface ClientOptions {
  /** Gateway base URL, e.g. `https://127.0.0.1:8443`. */
  url: string;
  /** Client certificate chain (PEM, leaf first) and its PKCS#8 key (PEM). */
  cert: string;
  key: string;
  /** CA certificates (PEM) that issued the gateway's TLS certificate. */
  ca?: string;
  /** TLS server name, when the URL's host is an address the certificate does not name. */
  servername?: string;
  /** Retries of a submission after a network error, 429 or 503. Default 4. */
  retries?: number;
  /** First backoff in ms (doubled each time, capped by Retry-After when sent). Default 250. */
  backoffMs?: number;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** The 202/200 body of protocol §3. */
export interface AcceptResponse {
  id: string;
  digest: string;
  logIndex: number;
  status: 'accepted';
  receipt: string;
}

export interface SubmitResult {
  /** 202 accepted now; 200 a replay of an earlier acceptance. */
  status: 202 | 200;
  body: AcceptResponse;
  /** Submissions made, 1 when the first one was answered. */
  attempts: number;
}

/** A list item (protocol §5.3). Fields another gateway version adds are kept as they come. */
export interface MessageSummary {
  id: string;
  type: MessageType;
  from: string;
  to: string;
  priority: Priority;
  respondBy?: string | null;
  caseRef?: string;
  inReplyTo?: string | null;
  createdAt: string;
  acceptedAt?: string;
  status: string;
  decision?: string | null;
  deadline?: string | null;
  overdue?: boolean;
  dueSoon?: boolean;
  claim?: { subject: string; name?: string; at: string; expiresAt?: string } | null;
  digest?: string;
  logIndex?: number;
  [extra: string]: unknown;
}

export interface MessagePage {
  items: MessageSummary[];
  nextCursor: string | null;
}

export interface HistoryItem {
  status: string;
  at: string;
  by: { agency: string; role: string; subject: string; name?: string };
  [extra: string]: unknown;
}

export interface MessageDetail extends MessageSummary {
  envelope: Envelope | null;
  jws: string | null;
  receipt?: string;
  history: HistoryItem[];
}

export interface ListQuery {
  status?: string;
  decision?: string;
  type?: string;
  priority?: string;
  limit?: number;
  cursor?: string;
}

const RETRYABLE = new Set([429, 503]);
/** protocol §3.1: lines per batch request. */
export const BATCH_LINES = 1000;
/** protocol §3.1: bytes per batch request at the default CASEBRIDGE_MAX_BYTES (16 × 1 MiB). */
const BATCH_BYTES = 16 * 1024 * 1024;

/** The outcome of one message of `submitBatch`: its response, or its problem. */
export type BatchOutcome =
  | { status: 200 | 202; body: AcceptResponse; problem?: undefined }
  | { status: number; problem: ProblemBody; body?: undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CasebridgeClient {
  private readonly agent: Agent;
  private readonly signing: {
    key: ReturnType<typeof createPrivateKey>;
    chain: ReturnType<typeof parsePemChain>;
  };

  constructor(private readonly opts: ClientOptions) {
    this.agent = new Agent({
      cert: opts.cert,
      key: opts.key,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.servername ? { servername: opts.servername } : {}),
      keepAlive: true,
    });
    this.signing = { key: createPrivateKey(opts.key), chain: parsePemChain(opts.cert) };
  }

  close(): void {
    this.agent.destroy();
  }

  /** A compact JWS of `envelope`, signed with this client's certificate key (protocol §2.1). */
  sign(envelope: Envelope): string {
    return signMessage(envelope, this.signing);
  }

  /** One HTTPS request. Problems are thrown as ApiError; a broken connection as TransportError. */
  async request(
    method: string,
    path: string,
    body?: { type: string; data: string | Buffer },
  ): Promise<HttpResult> {
    const url = new URL(path, this.opts.url);
    const res = await new Promise<HttpResult>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          headers: body
            ? { 'content-type': body.type, 'content-length': Buffer.byteLength(body.data) }
            : {},
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }),
          );
          r.on('error', (e) => reject(new TransportError(e.message, { cause: e })));
        },
      );
      req.on('error', (e) =>
        reject(new TransportError(`cannot reach ${url.origin}: ${e.message}`, { cause: e })),
      );
      if (body) req.write(body.data);
      req.end();
    });
    if (res.status >= 400) throw problemOf(res);
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(
      method,
      path,
      body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) },
    );
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  /**
   * Submits a message: an envelope (signed here) or a compact JWS. Retries on a
   * network error, 429 and 503, re-sending the same bytes: a copy the gateway had
   * already taken is answered 200 with the original receipt (protocol §3), so a
   * retry never makes a second message. Other problems are thrown at once.
   */
  async submit(message: Envelope | string): Promise<SubmitResult> {
    const jws = typeof message === 'string' ? message.trim() : this.sign(message);
    const retries = this.opts.retries ?? 4;
    let wait = this.opts.backoffMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.request('POST', '/v1/messages', {
          type: 'application/jose',
          data: jws,
        });
        const body = JSON.parse(res.body.toString('utf8')) as AcceptResponse;
        return { status: res.status === 202 ? 202 : 200, body, attempts: attempt };
      } catch (e) {
        const retryable =
          e instanceof TransportError || (e instanceof ApiError && RETRYABLE.has(e.status));
        if (!retryable || attempt > retries) throw e;
        const after = e instanceof ApiError ? e.retryAfterS : undefined;
        await sleep(after !== undefined ? after * 1000 : wait);
        wait *= 2;
      }
    }
  }

  /**
   * Submits many messages through `POST /v1/messages/batch` (protocol §3.1):
   * envelopes (signed here) or compact JWS, at most `BATCH_LINES` per request.
   * Resolves with one outcome per message, in order: its 202/200 response or its
   * problem; a refused message never fails the others. A whole request that meets
   * a network error, 429 or 503, and a line answered 429 or 503, is sent again
   * (the same bytes, so a copy already taken comes back 200 with its receipt) up
   * to `retries` times; what still fails then is returned as its problem.
   */
  async submitBatch(messages: readonly (Envelope | string)[]): Promise<BatchOutcome[]> {
    const jws = messages.map((m) => (typeof m === 'string' ? m.trim() : this.sign(m)));
    const out: BatchOutcome[] = new Array<BatchOutcome>(jws.length);
    for (let start = 0; start < jws.length;) {
      let end = start;
      let bytes = 0;
      while (end < jws.length && end - start < BATCH_LINES) {
        const size = jws[end]!.length + 1;
        if (end > start && bytes + size > BATCH_BYTES) break;
        bytes += size;
        end++;
      }
      await this.sendBatch(jws, start, end, out);
      start = end;
    }
    return out;
  }

  /** Sends lines [start, end) of `jws`, retrying what may be retried; fills `out`. */
  private async sendBatch(
    jws: readonly string[],
    start: number,
    end: number,
    out: BatchOutcome[],
  ): Promise<void> {
    const retries = this.opts.retries ?? 4;
    let wait = this.opts.backoffMs ?? 250;
    let todo = Array.from({ length: end - start }, (_, k) => start + k);
    for (let attempt = 1; ; attempt++) {
      let after: number | undefined;
      try {
        const res = await this.request('POST', '/v1/messages/batch', {
          type: 'application/x-ndjson',
          data: todo.map((i) => jws[i] + '\n').join(''),
        });
        const lines = res.body
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0);
        const again: number[] = [];
        for (const text of lines) {
          const a = JSON.parse(text) as { line: number; status: number; body: unknown };
          const i = todo[a.line - 1];
          if (i === undefined) continue;
          out[i] =
            a.status === 202 || a.status === 200
              ? { status: a.status, body: a.body as AcceptResponse }
              : { status: a.status, problem: a.body as ProblemBody };
          if (RETRYABLE.has(a.status)) again.push(i);
        }
        if (again.length === 0 || attempt > retries) return;
        todo = again;
        const ra = Number(res.headers['retry-after']);
        if (Number.isFinite(ra) && ra >= 0) after = ra;
      } catch (e) {
        const retryable =
          e instanceof TransportError || (e instanceof ApiError && RETRYABLE.has(e.status));
        if (!retryable || attempt > retries) {
          if (!(e instanceof ApiError)) throw e;
          // The whole request was refused (size, media type): every line shares the problem.
          for (const i of todo) out[i] = { status: e.status, problem: e.problem };
          return;
        }
        if (e instanceof ApiError) after = e.retryAfterS;
      }
      await sleep(after !== undefined ? after * 1000 : wait);
      wait *= 2;
    }
  }

  /** A fresh id and createdAt, for sending a template again as a new message. */
  static fresh(envelope: Envelope, now = new Date()): Envelope {
    return { ...envelope, id: randomUUID(), createdAt: now.toISOString() };
  }

  inbox(q: ListQuery = {}): Promise<MessagePage> {
    return this.json('GET', `/v1/inbox${query({ ...q })}`);
  }

  list(direction: 'sent' | 'received', q: ListQuery = {}): Promise<MessagePage> {
    return this.json('GET', `/v1/messages${query({ ...q, direction })}`);
  }

  /** Every page of the inbox, following `nextCursor`. */
  async *inboxAll(q: ListQuery = {}): AsyncGenerator<MessageSummary> {
    let cursor = q.cursor;
    do {
      const page = await this.inbox({ ...q, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  get(id: string): Promise<MessageDetail> {
    return this.json('GET', `/v1/messages/${encodeURIComponent(id)}`);
  }

  thread(id: string): Promise<{ items: MessageSummary[] }> {
    return this.json('GET', `/v1/messages/${encodeURIComponent(id)}/thread`);
  }

  claim(id: string): Promise<Record<string, unknown>> {
    return this.json('POST', `/v1/messages/${encodeURIComponent(id)}/claim`);
  }

  release(id: string): Promise<Record<string, unknown>> {
    return this.json('POST', `/v1/messages/${encodeURIComponent(id)}/release`);
  }

  decide(
    id: string,
    status: DecisionStatus | 'received',
    reason?: string,
  ): Promise<Record<string, unknown>> {
    return this.json('POST', `/v1/messages/${encodeURIComponent(id)}/decision`, {
      status,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  /** The inclusion proof of a message's `message.accepted` entry (protocol §6.4). */
  messageProof(id: string, size?: number): Promise<InclusionProof> {
    return this.json('GET', `/v1/messages/${encodeURIComponent(id)}/proof${query({ size })}`);
  }

  inclusionProof(index: number, size?: number): Promise<InclusionProof> {
    return this.json('GET', `/v1/audit/proof/inclusion${query({ index, size })}`);
  }

  consistencyProof(
    from: number,
    to?: number,
  ): Promise<{ from: number; to: number; hashes: string[] }> {
    return this.json('GET', `/v1/audit/proof/consistency${query({ from, to })}`);
  }

  /** The latest signed checkpoint, or the one signed at `size`. */
  async checkpoint(size?: number): Promise<string> {
    return (await this.request('GET', `/v1/audit/checkpoint${query({ size })}`)).body.toString(
      'utf8',
    );
  }

  /** The log key as the gateway publishes it. An auditor pins one got from elsewhere. */
  async logKey(): Promise<string> {
    return (await this.request('GET', '/v1/audit/key')).body.toString('utf8').trim();
  }

  /** The export bundle (ndjson) of protocol §6.4. */
  async exportBundle(
    q: { start?: number; end?: number; messages?: boolean } = {},
  ): Promise<Buffer> {
    return (await this.request('GET', `/v1/audit/export${query(q)}`)).body;
  }
}

function query(q: Record<string, string | number | boolean | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
  return p.size > 0 ? `?${p}` : '';
}

function problemOf(res: HttpResult): ApiError {
  let problem: ProblemBody;
  try {
    problem = JSON.parse(res.body.toString('utf8')) as ProblemBody;
    if (typeof problem.code !== 'string') throw new Error('no code');
  } catch {
    problem = { status: res.status, code: res.status >= 500 ? 'UNAVAILABLE' : 'UNKNOWN' };
  }
  const ra = Number(res.headers['retry-after']);
  return new ApiError(res.status, problem, Number.isFinite(ra) && ra >= 0 ? ra : undefined);
}
