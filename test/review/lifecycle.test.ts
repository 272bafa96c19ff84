import { expect } from 'chai';
import fc from 'fast-check';
import { DECISION_STATUSES, type DecisionStatus } from '../../src/envelope/types.js';
import { deadlineFlags, deadlineOf, dueSoonFrom } from '../../src/review/deadlines.js';
import {
  FINAL_DECISIONS,
  LIFECYCLE_STATUSES,
  effectiveState,
  review,
  type ReviewAction,
  type ReviewState,
} from '../../src/review/lifecycle.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';

const T0 = new Date('2026-12-02T08:00:00.000Z');
const TTL = 1800_000;
const ann = { subject: 'sha256:' + 'a'.repeat(64), name: 'Officer A' };
const bob = { subject: 'sha256:' + 'b'.repeat(64), name: 'Officer B' };
const at = (ms: number) => new Date(T0.getTime() + ms);
const delivered: ReviewState = { status: 'delivered', decision: null, claim: null };

function claimedBy(who: typeof ann, since = T0): ReviewState {
  return {
    status: 'claimed',
    decision: null,
    claim: {
      ...who,
      at: since.toISOString(),
      expiresAt: new Date(since.getTime() + TTL).toISOString(),
    },
  };
}

describe('review/lifecycle (protocol §5.1, §5.4, §5.5)', function () {
  it('claims only delivered messages, and a holder renews', function () {
    expect(
      review({ ...delivered, status: 'accepted' }, { kind: 'claim', officer: ann, ttlMs: TTL }, T0)
        .refusal,
    ).to.equal('not-delivered');
    expect(
      review({ ...delivered, status: 'queued' }, { kind: 'claim', officer: ann, ttlMs: TTL }, T0)
        .refusal,
    ).to.equal('not-delivered');
    expect(
      review({ ...delivered, status: 'decided' }, { kind: 'claim', officer: ann, ttlMs: TTL }, T0)
        .refusal,
    ).to.equal('decided');
    const r = review(delivered, { kind: 'claim', officer: ann, ttlMs: TTL }, T0);
    expect(r.refusal).to.equal(undefined);
    expect(r.transitions.map((t) => t.event)).to.deep.equal(['claimed']);
    expect(r.transitions[0]!.next.claim).to.deep.equal({
      ...ann,
      at: T0.toISOString(),
      expiresAt: at(TTL).toISOString(),
    });
    expect(
      review(claimedBy(ann), { kind: 'claim', officer: bob, ttlMs: TTL }, at(1000)).refusal,
    ).to.equal('already-claimed');
    const renewed = review(claimedBy(ann), { kind: 'claim', officer: ann, ttlMs: TTL }, at(1000));
    expect(renewed.transitions[0]!.next.claim!.expiresAt).to.equal(at(1000 + TTL).toISOString());
  });

  it('lapses an expired claim first, for every action, even a refused one', function () {
    const late = at(TTL);
    expect(effectiveState(claimedBy(ann), late)).to.deep.equal(delivered);
    expect(effectiveState(claimedBy(ann), at(TTL - 1)).status).to.equal('claimed');
    const takeover = review(claimedBy(ann), { kind: 'claim', officer: bob, ttlMs: TTL }, late);
    expect(takeover.transitions.map((t) => [t.event, t.by])).to.deep.equal([
      ['lapsed', 'gateway'],
      ['claimed', 'caller'],
    ]);
    const release = review(claimedBy(ann), { kind: 'release', officer: ann }, late);
    expect(release.refusal).to.equal('not-claimed');
    expect(release.transitions.map((t) => t.event)).to.deep.equal(['lapsed']);
    expect(review(claimedBy(ann), { kind: 'lapse' }, at(TTL - 1)).transitions).to.deep.equal([]);
  });

  it('lets only the holder release or decide; a non-final decision keeps and renews the claim, a final one ends it', function () {
    expect(review(claimedBy(ann), { kind: 'release', officer: bob }, T0).refusal).to.equal(
      'not-claimed',
    );
    expect(
      review(delivered, { kind: 'decide', officer: ann, decision: 'accepted', ttlMs: TTL }, T0)
        .refusal,
    ).to.equal('not-claimed');
    expect(
      review(claimedBy(ann), { kind: 'decide', officer: bob, decision: 'accepted', ttlMs: TTL }, T0)
        .refusal,
    ).to.equal('not-claimed');
    for (const decision of DECISION_STATUSES) {
      const r = review(
        claimedBy(ann),
        { kind: 'decide', officer: ann, decision, ttlMs: TTL },
        at(60_000),
      );
      const next = r.transitions.at(-1)!.next;
      if (FINAL_DECISIONS.includes(decision)) {
        expect(next, decision).to.deep.equal({ status: 'decided', decision, claim: null });
      } else {
        expect(next.status, decision).to.equal('claimed');
        expect(next.decision).to.equal(decision);
        expect(next.claim).to.deep.include({
          ...ann,
          at: T0.toISOString(),
          expiresAt: at(60_000 + TTL).toISOString(),
        });
      }
    }
    expect(
      review(
        { status: 'decided', decision: 'executed', claim: null },
        { kind: 'decide', officer: ann, decision: 'executed', ttlMs: TTL },
        T0,
      ).refusal,
    ).to.equal('decided');
  });

  it('takes an answer from the recipient agency as the decision, noting it only before delivery', function () {
    const early = review(
      { ...delivered, status: 'queued' },
      { kind: 'answer', decision: 'executed' },
      T0,
    );
    expect(early.transitions.map((t) => [t.event, t.next.status])).to.deep.equal([
      ['noted', 'queued'],
    ]);
    const held = review(claimedBy(ann), { kind: 'answer', decision: 'in-progress' }, T0);
    expect(held.transitions[0]!.next).to.deep.include({
      status: 'claimed',
      decision: 'in-progress',
    });
    const final = review(claimedBy(ann), { kind: 'answer', decision: 'rejected' }, T0);
    expect(final.transitions[0]!.next).to.deep.equal({
      status: 'decided',
      decision: 'rejected',
      claim: null,
    });
  });

  it('keeps its invariants under any sequence of actions', function () {
    const officer = fc.constantFrom(ann, bob);
    const decision = fc.constantFrom(...DECISION_STATUSES);
    const action: fc.Arbitrary<ReviewAction> = fc.oneof(
      officer.map((o) => ({ kind: 'claim' as const, officer: o, ttlMs: TTL })),
      officer.map((o) => ({ kind: 'release' as const, officer: o })),
      fc.record({ o: officer, d: decision }).map(({ o, d }) => ({
        kind: 'decide' as const,
        officer: o,
        decision: d as DecisionStatus,
        ttlMs: TTL,
      })),
      fc.constant({ kind: 'lapse' as const }),
      decision.map((d) => ({ kind: 'answer' as const, decision: d as DecisionStatus })),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(action, fc.integer({ min: 0, max: 2 * TTL })), { maxLength: 30 }),
        (steps) => {
          let state = delivered;
          let now = T0.getTime();
          for (const [a, dt] of steps) {
            now += dt;
            const r = review(state, a, new Date(now));
            for (const t of r.transitions) state = t.next;
            expect(LIFECYCLE_STATUSES).to.include(state.status);
            // A claim exists exactly while claimed; decided is terminal.
            expect(state.claim !== null).to.equal(state.status === 'claimed');
            if (state.status === 'decided') expect(state.decision).to.not.equal(null);
            if (state.claim) expect(Date.parse(state.claim.expiresAt)).to.be.greaterThan(now);
          }
        },
      ),
    );
  });
});

describe('review/deadlines (protocol §5.5)', function () {
  it('takes the earlier of respondBy and a freeze’s executeBy', function () {
    const freeze = sampleEnvelope('funds.freeze', { respondBy: at(6 * 3600_000).toISOString() });
    freeze.body['executeBy'] = at(4 * 3600_000).toISOString();
    expect(deadlineOf(freeze)).to.equal(at(4 * 3600_000).toISOString());
    freeze.body['executeBy'] = at(8 * 3600_000).toISOString();
    expect(deadlineOf(freeze)).to.equal(at(6 * 3600_000).toISOString());
    const request = sampleEnvelope('evidence.request');
    delete request.respondBy;
    expect(deadlineOf(request)).to.equal(null);
    // executeBy counts for freezes only.
    const other = sampleEnvelope('evidence.request', { respondBy: at(3600_000).toISOString() });
    other.body['executeBy'] = T0.toISOString();
    expect(deadlineOf(other)).to.equal(at(3600_000).toISOString());
  });

  it('is due soon in the last quarter, overdue after, and neither once decided', function () {
    const m = {
      status: 'delivered' as const,
      createdAt: T0.toISOString(),
      deadline: at(4000_000).toISOString(),
    };
    expect(dueSoonFrom(m.createdAt, m.deadline)).to.equal(T0.getTime() + 3000_000);
    expect(deadlineFlags(m, at(2999_999))).to.deep.equal({ overdue: false, dueSoon: false });
    expect(deadlineFlags(m, at(3000_000))).to.deep.equal({ overdue: false, dueSoon: true });
    expect(deadlineFlags(m, at(4000_000))).to.deep.equal({ overdue: true, dueSoon: false });
    expect(deadlineFlags({ ...m, status: 'claimed' }, at(5000_000)).overdue).to.equal(true);
    expect(deadlineFlags({ ...m, status: 'decided' }, at(5000_000))).to.deep.equal({
      overdue: false,
      dueSoon: false,
    });
    expect(deadlineFlags({ ...m, deadline: null }, at(5000_000))).to.deep.equal({
      overdue: false,
      dueSoon: false,
    });
  });
});
