/**
 * The console is a client of the public API (protocol §3–§6) over the page's own
 * origin and mutual TLS. State-changing calls carry the session's CSRF token.
 */

export interface Session {
  agency: string;
  role: 'system' | 'officer' | 'auditor' | 'gateway';
  name: string;
  subject: string;
  gatewayId: string;
  csrfHeader: string;
  csrf: string;
}

export interface Claim {
  subject: string;
  name?: string;
  at: string;
  expiresAt?: string;
}

export interface Summary {
  id: string;
  type: string;
  from: string;
  to: string;
  priority: 'emergency' | 'urgent' | 'routine';
  respondBy: string | null;
  deadline?: string | null;
  overdue?: boolean;
  dueSoon?: boolean;
  caseRef: string;
  inReplyTo: string | null;
  createdAt: string;
  acceptedAt: string;
  status: string;
  decision: string | null;
  claim?: Claim | null;
  digest: string;
  logIndex: number;
}

export interface HistoryItem {
  status: string;
  /** What happened (accepted, queued, delivered, claimed, released, lapsed, decided). */
  event?: string;
  decision?: string | null;
  at: string;
  by: { agency: string; role: string; subject: string; name?: string };
}

/** `GET /v1/messages/{id}`: the review fields, with routing read from the envelope. */
export interface MessageView {
  id: string;
  digest: string;
  logIndex: number;
  status: string;
  decision: string | null;
  claim?: Claim | null;
  deadline?: string | null;
  overdue?: boolean;
  dueSoon?: boolean;
  acceptedAt: string;
  envelope: Record<string, unknown>;
  jws: string;
  receipt: string;
  history: HistoryItem[];
}

export interface Proof {
  index: number;
  size: number;
  hashes: string[];
  leaf?: string;
  checkpoint?: string;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

export class Api {
  session: Session | undefined;

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (method !== 'GET' && this.session) headers[this.session.csrfHeader] = this.session.csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) {
      let code = 'HTTP_' + res.status;
      try {
        code = ((await res.json()) as { code?: string }).code ?? code;
      } catch {
        // not problem+json
      }
      throw new ApiError(res.status, code);
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.call(method, path, body)).json() as Promise<T>;
  }

  private async text(path: string): Promise<string> {
    return (await this.call('GET', path)).text();
  }

  async start(): Promise<Session> {
    this.session = await this.json<Session>('GET', '/console/api/session');
    return this.session;
  }

  trust() {
    return this.json<{ gatewayId: string; anchors: string[]; gateway: string[] }>(
      'GET',
      '/console/api/trust',
    );
  }

  inbox(filter: { type?: string; priority?: string; status?: string }) {
    const q = new URLSearchParams({ limit: '200' });
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    return this.json<{ items: Summary[] }>('GET', `/v1/inbox?${q}`);
  }

  message(id: string) {
    return this.json<MessageView>('GET', `/v1/messages/${encodeURIComponent(id)}`);
  }

  thread(id: string) {
    return this.json<{ items: Summary[] }>('GET', `/v1/messages/${encodeURIComponent(id)}/thread`);
  }

  proof(id: string) {
    return this.json<Proof>('GET', `/v1/messages/${encodeURIComponent(id)}/proof`);
  }

  logKey() {
    return this.text('/v1/audit/key');
  }

  checkpoint() {
    return this.text('/v1/audit/checkpoint');
  }

  consistency(from: number, to: number) {
    return this.json<{ from: number; to: number; hashes: string[] }>(
      'GET',
      `/v1/audit/proof/consistency?from=${from}&to=${to}`,
    );
  }

  claim(id: string) {
    return this.json<unknown>('POST', `/v1/messages/${encodeURIComponent(id)}/claim`);
  }

  release(id: string) {
    return this.json<unknown>('POST', `/v1/messages/${encodeURIComponent(id)}/release`);
  }

  decide(id: string, status: string, reason: string | undefined) {
    return this.json<unknown>('POST', `/v1/messages/${encodeURIComponent(id)}/decision`, {
      status,
      ...(reason ? { reason } : {}),
    });
  }

  /** protocol §5.5 event stream; `onChange` gets each event's type and data. */
  events(
    onChange: (
      kind: string,
      data: { id: string; type: string; priority: string; status: string },
    ) => void,
    onState: (open: boolean) => void,
  ): EventSource {
    const es = new EventSource('/v1/events');
    for (const kind of ['arrived', 'claimed', 'released', 'lapsed', 'decided', 'replied']) {
      es.addEventListener(kind, (e) => {
        try {
          onChange(kind, JSON.parse((e as MessageEvent<string>).data));
        } catch {
          // a malformed event changes nothing
        }
      });
    }
    es.onopen = () => onState(true);
    es.onerror = () => onState(false);
    return es;
  }
}
