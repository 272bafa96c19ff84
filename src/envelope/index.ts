export * from './types.js';
export { digestOf, certificateSubject, algForKey, signCompactSync, splitCompact } from './jws.js';
export { signMessage, signReceipt, type SigningIdentity } from './sign.js';
export { verifyMessageJws, type VerifyDeps, type VerifiedMessage } from './verify.js';
