/** protocol §5.3 threads: every message linked through `inReplyTo` that a reader may see. */
import type { MessageReader, MessageRecord } from './types.js';
import { visibleTo } from './visibility.js';

/** The most messages one thread answer holds. */
export const MAX_THREAD = 1000;

/**
 * Climbs from `start` to the first message the agency may see whose parent it may
 * not (or that has none), then walks the replies breadth-first; in log order.
 */
export async function threadOf(
  messages: Pick<MessageReader, 'getMessage' | 'replies'>,
  start: MessageRecord,
  agency: string,
): Promise<MessageRecord[]> {
  let root = start;
  const climbed = new Set([root.id]);
  while (root.inReplyTo) {
    const parent = await messages.getMessage(root.inReplyTo);
    if (!visibleTo(parent, agency) || climbed.has(parent.id)) break;
    climbed.add(parent.id);
    root = parent;
  }
  const out: MessageRecord[] = [];
  const seen = new Set<string>();
  const queue = [root];
  while (queue.length > 0 && out.length < MAX_THREAD) {
    const m = queue.shift()!;
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    out.push(m);
    for (const reply of await messages.replies(m.id)) {
      if (visibleTo(reply, agency)) queue.push(reply);
    }
  }
  return out.sort((a, b) => a.logIndex - b.logIndex);
}
