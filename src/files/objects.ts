/**
 * The content-addressed store of completed files (protocol §9.1, §11): one file per
 * agency and hash, `objects/<agency>/<sha256>`, moved into place by an atomic
 * rename after an fsync, so a reader sees a whole file or none.
 */
import { constants, createReadStream, mkdirSync, type ReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isSha256Hex } from './digest.js';

const AGENCY_ID = /^[A-Z]{2}(-[A-Z0-9]{1,12}){1,4}$/;

export interface ObjectEntry {
  agency: string;
  sha256: string;
  size: number;
}

export class ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    mkdirSync(root, { recursive: true });
  }

  /** The path of a stored file; only well-formed names ever become paths. */
  pathOf(agency: string, sha256: string): string {
    if (!AGENCY_ID.test(agency) || !isSha256Hex(sha256)) throw new Error('not a stored-file name');
    return join(this.root, agency, sha256);
  }

  /** Makes `src` (a complete, verified file) the stored copy: fsync, rename, fsync the directory. */
  async commit(src: string, agency: string, sha256: string): Promise<void> {
    await fsyncPath(src);
    const dir = join(this.root, agency);
    await mkdir(dir, { recursive: true });
    await chmod(src, 0o440);
    await rename(src, this.pathOf(agency, sha256));
    await fsyncPath(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  }

  async size(agency: string, sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(agency, sha256))).size;
    } catch {
      return undefined;
    }
  }

  read(agency: string, sha256: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.pathOf(agency, sha256), range);
  }

  async remove(agency: string, sha256: string): Promise<void> {
    await rm(this.pathOf(agency, sha256), { force: true });
  }

  /** Every stored file, for reconciliation with the records. */
  async *list(): AsyncGenerator<ObjectEntry> {
    for (const agency of await readdir(this.root)) {
      if (!AGENCY_ID.test(agency)) continue;
      for (const name of await readdir(join(this.root, agency))) {
        if (!isSha256Hex(name)) continue;
        const st = await stat(join(this.root, agency, name)).catch(() => undefined);
        if (st?.isFile()) yield { agency, sha256: name, size: st.size };
      }
    }
  }
}

export async function fsyncPath(path: string, flags: number = constants.O_RDONLY): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
