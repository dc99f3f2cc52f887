import { ErrorCodes, TallyError, type FunnelQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const funnel: KindRunner<FunnelQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'funnel queries are being built');
};
