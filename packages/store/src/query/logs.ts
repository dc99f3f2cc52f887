import { ErrorCodes, TallyError, type LogsQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const logs: KindRunner<LogsQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'logs queries are being built');
};
