import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The gateway's Prometheus metrics, on a registry of its own (no global state). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'casebridge_http_requests_total',
    help: 'HTTP requests by route, method and outcome code',
    labelNames: ['route', 'method', 'status', 'code'] as const,
    registers: [this.registry],
  });
  readonly accepted = new Counter({
    name: 'casebridge_messages_accepted_total',
    help: 'Messages accepted, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'casebridge_messages_refused_total',
    help: 'Submissions refused, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly acceptLatency = new Histogram({
    name: 'casebridge_accept_seconds',
    help: 'Time from request to durable acceptance',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly published = new Counter({
    name: 'casebridge_outbox_published_total',
    help: 'Messages confirmed by the broker (or the embedded queue)',
    registers: [this.registry],
  });
  readonly publishRetries = new Counter({
    name: 'casebridge_outbox_publish_retries_total',
    help: 'Publish attempts that must be retried, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly delivered = new Counter({
    name: 'casebridge_messages_delivered_total',
    help: 'Messages recorded in a recipient inbox',
    registers: [this.registry],
  });
  readonly duplicates = new Counter({
    name: 'casebridge_delivery_duplicates_total',
    help: 'Redeliveries recognised by message id and not delivered again',
    registers: [this.registry],
  });
  readonly deadLettered = new Counter({
    name: 'casebridge_messages_dead_lettered_total',
    help: 'Messages the consumer gave up on (sent to casebridge.dead)',
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'casebridge_outbox_in_flight',
    help: 'Messages published and awaiting a broker confirm',
    registers: [this.registry],
  });
  readonly outboxLag = new Gauge({
    name: 'casebridge_outbox_lag',
    help: 'Accepted messages not yet confirmed by the broker',
    registers: [this.registry],
  });
  readonly brokerConnected = new Gauge({
    name: 'casebridge_broker_connected',
    help: '1 when the AMQP connection is up (always 1 in embedded mode)',
    registers: [this.registry],
  });
  readonly auditSize = new Gauge({
    name: 'casebridge_audit_tree_size',
    help: 'Entries in the audit log',
    registers: [this.registry],
  });
  readonly overdue = new Gauge({
    name: 'casebridge_messages_overdue',
    help: 'Undecided messages past their deadline, by recipient agency and priority',
    labelNames: ['agency', 'priority'] as const,
    registers: [this.registry],
  });
  readonly dueSoon = new Gauge({
    name: 'casebridge_messages_due_soon',
    help: 'Undecided messages with under a quarter of their time left, by recipient agency and priority',
    labelNames: ['agency', 'priority'] as const,
    registers: [this.registry],
  });
  readonly eventStreams = new Gauge({
    name: 'casebridge_event_streams',
    help: 'Open GET /v1/events streams',
    registers: [this.registry],
  });
  readonly checkpointSize = new Gauge({
    name: 'casebridge_audit_checkpoint_size',
    help: 'Tree size of the latest signed checkpoint',
    registers: [this.registry],
  });

  readonly outboxOldestAge = new Gauge({
    name: 'casebridge_outbox_oldest_age_seconds',
    help: 'Age of the oldest message not yet confirmed by the broker (0 when the outbox is empty)',
    registers: [this.registry],
  });
  readonly brokerBlocked = new Gauge({
    name: 'casebridge_broker_blocked',
    help: '1 while the broker blocks the publishing connection (memory or disk alarm)',
    registers: [this.registry],
  });
  readonly dataDirFree = new Gauge({
    name: 'casebridge_data_dir_free_bytes',
    help: 'Bytes free for the gateway on the file system of its data directory',
    registers: [this.registry],
  });
  readonly storeWritable = new Gauge({
    name: 'casebridge_store_writable',
    help: '0 while store writes fail (disk full or disk error), else 1',
    registers: [this.registry],
  });
  readonly checkpointStale = new Gauge({
    name: 'casebridge_audit_checkpoint_stale_seconds',
    help: 'Seconds since the latest checkpoint while the log has grown past it (0 when it covers the log)',
    registers: [this.registry],
  });
  readonly signerLease = new Gauge({
    name: 'casebridge_signer_lease_held',
    help: 'Whether this process holds the checkpoint signer lease (1) or stands by (0)',
    registers: [this.registry],
  });
  readonly clockSteps = new Counter({
    name: 'casebridge_clock_steps_total',
    help: 'Steps of the wall clock against the monotonic clock, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'casebridge_' });
  }
}
