/**
 * protocol §9.5: an evidence.transfer as a CASE/UCO JSON-LD bundle. Each exhibit
 * is a `uco-observable:File` with a ContentData facet (size, SHA-256); each custody
 * step the sender declared is a `case-investigation:InvestigativeAction` whose
 * result is the exhibit's `case-investigation:ProvenanceRecord`; the gateway's own
 * custody entries (stored, bound, downloaded) follow as actions carrying their log
 * index, so a reader can ask the audit log for their inclusion proofs.
 *
 * Terms come from the UCO 1.4 and CASE 1.4 ontologies; the context that maps them
 * ships with the gateway (`schemas/case-uco-1.context.jsonld`, served at
 * CONTEXT_PATH). Pure: no I/O.
 */
import type { Envelope } from '../envelope/types.js';
import type { CustodyEvent } from './types.js';

export const CONTEXT_FILE = 'case-uco-1.context.jsonld';
export const CONTEXT_PATH = '/v1/contexts/case-uco-1.jsonld';

interface TransferItem {
  exhibitNo: string;
  description: string;
  sha256: string;
  size: number;
  custody: { at: string; action: string; by: string }[];
}

export interface CaseExportInput {
  envelope: Envelope;
  digest: string;
  logIndex: number;
  acceptedAt: string;
  gatewayId: string;
  custody: CustodyEvent[];
}

type Node = Record<string, unknown>;

const ref = (id: string): Node => ({ '@id': id });

export function caseBundle(x: CaseExportInput): Node {
  const env = x.envelope;
  const kb = (kind: string, ...parts: number[]) => `kb:${[kind, env.id, ...parts].join('-')}`;
  const items = (env.body as { items: TransferItem[] }).items;
  const organization = (agency: string): Node => ({
    '@id': `kb:organization-${agency}`,
    '@type': 'uco-identity:Organization',
    'uco-core:name': agency,
  });
  const agencies = new Set<string>([env.from, env.to, x.gatewayId]);
  for (const c of x.custody) agencies.add(c.actor.agency);

  const objects: Node[] = [...agencies].sort().map(organization);
  const fileIds = new Map<string, string>();
  items.forEach((item, k) => {
    const fileId = `kb:file-${item.sha256}`;
    if (!fileIds.has(item.sha256)) {
      fileIds.set(item.sha256, fileId);
      objects.push({
        '@id': fileId,
        '@type': 'uco-observable:File',
        'uco-core:hasFacet': [
          {
            '@id': `kb:content-data-facet-${item.sha256}`,
            '@type': 'uco-observable:ContentDataFacet',
            'uco-observable:sizeInBytes': item.size,
            'uco-observable:hash': [
              {
                '@id': `kb:hash-sha256-${item.sha256}`,
                '@type': 'uco-types:Hash',
                'uco-types:hashMethod': 'SHA256',
                'uco-types:hashValue': item.sha256,
              },
            ],
          },
        ],
      });
    }
    const recordId = kb('provenance-record', k);
    objects.push({
      '@id': recordId,
      '@type': 'case-investigation:ProvenanceRecord',
      'case-investigation:exhibitNumber': item.exhibitNo,
      'uco-core:description': item.description,
      'uco-core:object': [ref(fileId)],
    });
    item.custody.forEach((c, j) => {
      objects.push({
        '@id': kb('custody', k, j),
        '@type': 'case-investigation:InvestigativeAction',
        'uco-core:name': c.action,
        'casebridge:custodyAction': c.action,
        'uco-core:description': c.by,
        'uco-action:startTime': c.at,
        'uco-action:performer': ref(`kb:organization-${env.from}`),
        'uco-action:object': [ref(fileId)],
        'uco-action:result': [ref(recordId)],
      });
    });
  });

  x.custody.forEach((c, j) => {
    const fileId = fileIds.get(c.sha256);
    if (fileId === undefined) return;
    objects.push({
      '@id': kb('gateway-custody', j),
      '@type': 'case-investigation:InvestigativeAction',
      'uco-core:name': c.event,
      'casebridge:auditEvent': c.event,
      'casebridge:logIndex': c.logIndex,
      ...(c.messageId === null ? {} : { 'casebridge:messageId': c.messageId }),
      'uco-action:startTime': c.at,
      'uco-action:performer': ref(`kb:organization-${c.actor.agency}`),
      'casebridge:role': c.actor.role,
      'casebridge:certificateSubject': c.actor.subject,
      'uco-action:instrument': ref(`kb:organization-${x.gatewayId}`),
      'uco-action:object': [ref(fileId)],
    });
  });

  return {
    '@context': CONTEXT_PATH,
    '@id': kb('bundle'),
    '@type': 'uco-core:Bundle',
    'uco-core:name': `${env.type} ${env.id}`,
    'uco-core:objectCreatedTime': x.acceptedAt,
    'casebridge:messageId': env.id,
    'casebridge:messageDigest': x.digest,
    'casebridge:logIndex': x.logIndex,
    'uco-core:object': objects,
  };
}
