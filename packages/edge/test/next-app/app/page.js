import { createElement } from 'react';
import { signUp } from './actions.js';

export const dynamic = 'force-dynamic';

export default function Page() {
  return createElement(
    'form',
    { action: signUp },
    createElement('input', { name: 'plan', defaultValue: 'pro' }),
    createElement('button', { type: 'submit' }, 'Sign up'),
  );
}
