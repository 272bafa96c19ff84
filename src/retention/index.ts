export { SealError } from './seal.js';
export {
  DATA_KEY_LABEL,
  FileEpochKeys,
  dataKeyPem,
  epochOf,
  readDataKey,
  type EpochKeys,
} from './keys.js';
export {
  KeyMissingError,
  MessageVault,
  localVault,
  openVault,
  type SealedMessage,
} from './vault.js';
export { Shredder, expiredEpochs, type ShredReport, type ShredderOptions } from './shredder.js';
