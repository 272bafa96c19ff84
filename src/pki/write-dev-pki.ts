import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isPrivateKeyPath, type DevPkiFiles } from './dev-pki.js';

/** Writes a dev PKI under `dir`: private keys 0600, everything else 0644; each file replaced atomically. */
export function writeDevPki(dir: string, files: DevPkiFiles | Record<string, Buffer>): string[] {
  const written: string[] = [];
  for (const [rel, text] of Object.entries(files)) {
    const target = join(dir, rel);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    const mode = isPrivateKeyPath(rel) ? 0o600 : 0o644;
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, target);
    written.push(target);
  }
  return written;
}
