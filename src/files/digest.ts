/** protocol §9.1: a file is named by 64 lowercase hex characters of its SHA-256. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && SHA256_HEX.test(s);
}

/** The `digest` member of a custody audit entry (protocol §6.1 form). */
export function fileDigest(sha256: string): string {
  return `sha256:${sha256}`;
}
