import { ErrorCodes, TallyError, type ExploreQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const explore: KindRunner<ExploreQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'explore queries are being built');
};
