import { ErrorCodes, TallyError, type RetentionQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const retention: KindRunner<RetentionQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'retention queries are being built');
};
