import { ErrorCodes, TallyError, type TrendsQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const trends: KindRunner<TrendsQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'trends queries are being built');
};
