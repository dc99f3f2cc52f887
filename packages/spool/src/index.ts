export { isProcessAlive } from './process-alive.js';
export {
  readSpoolFile,
  Spool,
  type SpoolOptions,
  type SpoolOwner,
  type SpoolRead,
  type SpoolRecord,
  SPOOL_FILE,
  spoolFileOwner,
} from './spool.js';
