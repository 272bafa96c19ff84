/**
 * What the page trusts, gathered once: the deployment's anchors and gateway chain
 * (served by the gateway the browser reached over TLS), and the log key, pinned in
 * this browser the first time it is seen (trust on first use, shown with its id).
 */
import type { Api } from './api.js';
import { parseCertificate, pemToDer, type Certificate } from './der.js';
import { parseVkey, type Anchors, type LogKey } from './verify.js';

const PIN_KEY = 'casebridge.logKey';

export interface Trust {
  gatewayId: string;
  anchors: Anchors;
  gateway: Certificate[];
  logKey: LogKey | undefined;
  /** 'first' when this browser had no key yet, 'same' when it matches, 'changed' otherwise. */
  pin: 'first' | 'same' | 'changed';
  pinnedId: string | undefined;
}

export async function loadTrust(api: Api): Promise<Trust> {
  const [t, vkey] = await Promise.all([api.trust(), api.logKey()]);
  const anchors = { certs: t.anchors.flatMap((p) => pemToDer(p)).map((d) => parseCertificate(d)) };
  const gateway = t.gateway.flatMap((p) => pemToDer(p)).map((d) => parseCertificate(d));
  const logKey = await parseVkey(vkey);
  const pinned = localStorage.getItem(PIN_KEY);
  let pin: Trust['pin'] = 'same';
  if (pinned === null) {
    pin = 'first';
    if (logKey) localStorage.setItem(PIN_KEY, logKey.vkey);
  } else if (!logKey || pinned !== logKey.vkey) {
    pin = 'changed';
  }
  const pinnedKey = pinned === null ? logKey : await parseVkey(pinned);
  return {
    gatewayId: t.gatewayId,
    anchors,
    gateway,
    // After a change the page keeps verifying with the key it pinned, so a swapped
    // key cannot vouch for a forged log; the officer sees the warning.
    logKey: pin === 'changed' ? pinnedKey : logKey,
    pin,
    pinnedId: pinnedKey?.keyIdHex,
  };
}

/** Accepts the key the gateway serves now as the pinned one (the officer's explicit choice). */
export function repin(vkey: string): void {
  localStorage.setItem(PIN_KEY, vkey);
}
