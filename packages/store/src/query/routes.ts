import { ErrorCodes, TallyError, type RoutesQuery } from '@tally/core';
import type { KindRunner } from './types.js';

export const routes: KindRunner<RoutesQuery> = async () => {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'routes queries are being built');
};
