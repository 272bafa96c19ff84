export * from './types.js';
export { digestOf, certificateSubject, algForKey, signCompactSync, splitCompact } from './jws.js';
export { signMessage, signReceipt, type SigningIdentity } from './sign.js';
export { verifyMessageJws, type VerifyDeps, type VerifiedMessage } from './verify.js';
export { decodeJws, canonicalBase64url, canonicalBase64, type DecodedJws } from './decode.js';
export {
  checkHeader,
  verifySigned,
  signingTimeOf,
  signingTimeProblem,
  signingTimeDetail,
  type Freshness,
  type SigningTimeProblem,
  type Validity,
} from './profile.js';
