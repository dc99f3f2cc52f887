import { track } from '../../../lib/tally.js';

// On Next's edge runtime: no Node APIs, which is what @tally/edge is for.
export const runtime = 'edge';

/** A route handler: tracks `n` sign-ups and answers at once; delivery runs after the response. */
export async function POST(request) {
  const { n = 1 } = await request.json();
  for (let i = 0; i < n; i++) track('user_signed_up', { method: 'github', plan: 'team' });
  return Response.json({ tracked: n });
}
