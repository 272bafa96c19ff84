import { expect } from 'chai';
import {
  handlingOf,
  keptFromThirdParties,
  mayExportContent,
  replyRefusal,
  sameParties,
  type HandlingCode,
} from '../../src/messages/handling.js';
import { exportableTo } from '../../src/messages/visibility.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const C = 'VN-CB';

describe('messages/handling: handling codes (protocol §2.2)', function () {
  it('defaults to H1', function () {
    expect(handlingOf({})).to.equal('H1');
    expect(handlingOf({ handling: 'H3' })).to.equal('H3');
  });

  it('keeps H2 and H3 from third parties, and H3 out of exports', function () {
    const codes: HandlingCode[] = ['H0', 'H1', 'H2', 'H3'];
    expect(codes.filter(keptFromThirdParties)).to.deep.equal(['H2', 'H3']);
    expect(codes.filter(mayExportContent)).to.deep.equal(['H0', 'H1', 'H2']);
  });

  it('never lets an H2 or H3 message be the parent of a message to a third agency', function () {
    for (const handling of ['H2', 'H3'] as const) {
      const parent = { from: A, to: B, handling };
      // The recipient passing it on, and the sender copying it to another partner.
      expect(replyRefusal(parent, { from: B, to: C })).to.equal('third-party-handling');
      expect(replyRefusal(parent, { from: A, to: C })).to.equal('third-party-handling');
      expect(replyRefusal(parent, { from: B, to: A })).to.equal(undefined);
    }
    // H0/H1 to a third agency: refused by the same-parties rule, not by handling.
    expect(replyRefusal({ from: A, to: B, handling: 'H1' }, { from: A, to: C })).to.equal(
      'other-parties',
    );
  });

  it('hides the parent from a sender that is not one of its parties', function () {
    expect(replyRefusal(undefined, { from: A, to: B })).to.equal('unknown');
    expect(replyRefusal({ from: A, to: B, handling: 'H3' }, { from: C, to: A })).to.equal(
      'not-a-party',
    );
    expect(sameParties({ from: A, to: B }, { from: B, to: A })).to.equal(true);
  });

  it('exports content to a party only, never H3 and never shredded', function () {
    const m = (handling: HandlingCode, jws: string | null = 'x.y.z') => ({
      from: A,
      to: B,
      handling,
      jws,
    });
    expect(exportableTo(m('H2'), A)).to.equal(true);
    expect(exportableTo(m('H0'), B)).to.equal(true);
    expect(exportableTo(m('H3'), A)).to.equal(false);
    expect(exportableTo(m('H1', null), A)).to.equal(false);
    expect(exportableTo(m('H1'), C)).to.equal(false);
  });
});
