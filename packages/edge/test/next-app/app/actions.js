'use server';
import { track } from '../lib/tally.js';

/** A server action: the event is tracked and the action returns; delivery runs after the response. */
export async function signUp(formData) {
  track('user_signed_up', { method: 'email', plan: String(formData.get('plan') ?? 'free') });
}
