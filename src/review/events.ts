/**
 * The event stream of protocol §5.5: what changed in an agency's queues, as ids,
 * type, priority and status only. Changes come from the store after each commit;
 * this module decides who hears what, and holds the subscribers.
 */
import type { MessageType, Priority } from '../envelope/types.js';
import type { MessageChange, MessageRecord } from '../messages/types.js';
import type { LifecycleStatus } from './lifecycle.js';

export const STREAM_EVENTS = [
  'arrived',
  'claimed',
  'released',
  'lapsed',
  'decided',
  'replied',
] as const;
export type StreamEvent = (typeof STREAM_EVENTS)[number];

/** The whole payload of an event: never content, never names. */
export interface StreamData {
  id: string;
  type: MessageType;
  priority: Priority;
  status: LifecycleStatus;
}

export interface Delivery {
  agency: string;
  event: StreamEvent;
  data: StreamData;
}

function dataOf(m: Pick<MessageRecord, 'id' | 'type' | 'priority' | 'status'>): StreamData {
  return { id: m.id, type: m.type, priority: m.priority, status: m.status };
}

/**
 * Who hears a change:
 * - `arrived`: the recipient agency, when the message reaches its inbox;
 * - `replied`: the same agency, about the earlier message a delivered reply answers;
 * - `claimed`, `released`, `lapsed`, `decided`: both agencies of the message.
 */
export async function deliveriesOf(
  change: MessageChange,
  lookup: (id: string) => Promise<MessageRecord | undefined>,
): Promise<Delivery[]> {
  const m = change.message;
  switch (change.event) {
    case 'delivered': {
      const out: Delivery[] = [{ agency: m.to, event: 'arrived', data: dataOf(m) }];
      const parent = m.inReplyTo === null ? undefined : await lookup(m.inReplyTo);
      if (parent && (parent.from === m.to || parent.to === m.to)) {
        out.push({ agency: m.to, event: 'replied', data: dataOf(parent) });
      }
      return out;
    }
    case 'claimed':
    case 'released':
    case 'lapsed':
    case 'decided':
    case 'noted': {
      const event = change.event === 'noted' ? 'decided' : change.event;
      return [m.to, m.from].map((agency) => ({ agency, event, data: dataOf(m) }));
    }
  }
}

export interface Subscriber {
  agency: string;
  /** The principal's certificate fingerprint, for the per-principal bound. */
  subject: string;
  send(event: StreamEvent, data: StreamData): void;
  /** Ends the stream (gateway shutdown). */
  close(): void;
}

export interface EventHubOptions {
  maxPerPrincipal: number;
  maxTotal: number;
  lookup: (id: string) => Promise<MessageRecord | undefined>;
}

/** Subscribers by agency; bounded per principal and in all. */
export class EventHub {
  private readonly byAgency = new Map<string, Set<Subscriber>>();
  private readonly perPrincipal = new Map<string, number>();
  private total = 0;
  /** The changes being sent, in order. */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly opts: EventHubOptions) {}

  /** `full` when the principal (`principal`) or the gateway (`total`) has no room. */
  subscribe(s: Subscriber): { unsubscribe: () => void } | { full: 'principal' | 'total' } {
    const mine = this.perPrincipal.get(s.subject) ?? 0;
    if (mine >= this.opts.maxPerPrincipal) return { full: 'principal' };
    if (this.total >= this.opts.maxTotal) return { full: 'total' };
    let set = this.byAgency.get(s.agency);
    if (set === undefined) this.byAgency.set(s.agency, (set = new Set()));
    set.add(s);
    this.perPrincipal.set(s.subject, mine + 1);
    this.total++;
    let done = false;
    return {
      unsubscribe: () => {
        if (done) return;
        done = true;
        set.delete(s);
        if (set.size === 0) this.byAgency.delete(s.agency);
        const n = (this.perPrincipal.get(s.subject) ?? 1) - 1;
        if (n === 0) this.perPrincipal.delete(s.subject);
        else this.perPrincipal.set(s.subject, n);
        this.total--;
      },
    };
  }

  get size(): number {
    return this.total;
  }

  /** Ends every stream, so a shutdown does not wait for them. */
  closeAll(): void {
    for (const set of [...this.byAgency.values()]) {
      for (const s of [...set]) {
        try {
          s.close();
        } catch {
          // already gone
        }
      }
    }
  }

  /** Sends a change to its subscribers; changes go out in the order they were published. */
  publish(change: MessageChange): void {
    if (this.total === 0) return;
    this.sending = this.sending
      .then(() => deliveriesOf(change, this.opts.lookup))
      .then(
        (deliveries) => this.send(deliveries),
        () => {
          // A failed lookup drops this change's events; the stream goes on.
        },
      );
  }

  private send(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) {
      for (const s of this.byAgency.get(d.agency) ?? []) {
        try {
          s.send(d.event, d.data);
        } catch {
          // One broken subscriber never stops the others.
        }
      }
    }
  }
}
