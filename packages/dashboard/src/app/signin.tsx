import { useState } from 'preact/hooks';
import { ApiError, request, whoami } from './api.js';
import { ErrorBox } from './components/error-box.js';
import type { Session } from './session.js';

/**
 * Sign-in: a read key (or an admin key) of a tenant. The server says who the key is (`GET /v1/whoami`);
 * a write key is refused there with its message, since write keys ship inside apps and must never read.
 * A server-wide admin key reads one tenant at a time: it picks one here.
 */
export function SignIn(props: { onSignedIn: (s: Session) => void; notice?: string }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [pending, setPending] = useState<{ key: string; keyId: string; tenants: string[] }>();
  const [tenant, setTenant] = useState('');

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const typed = key.trim();
    if (!typed) {
      setError(new ApiError('TALLY_UNAUTHORIZED', 'Enter a read key (tally keys create --scope read).', 0));
      return;
    }
    setBusy(true);
    try {
      const who = await whoami(typed);
      if (who.scope === 'write') {
        // The server answers 403 for write keys; this covers a server that would not.
        throw new ApiError('TALLY_FORBIDDEN', 'a write key cannot read: use a read key of the tenant', 403);
      }
      if (who.tenant === null) {
        const list = await request<{ tenants: { id: string }[] }>('/v1/admin/tenants', { key: typed, tenant: false });
        const tenants = list.tenants.map((t) => t.id);
        setPending({ key: typed, keyId: who.keyId, tenants });
        setTenant(tenants[0] ?? '');
        return;
      }
      props.onSignedIn({ key: typed, keyId: who.keyId, scope: who.scope, tenant: who.tenant });
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError('TALLY_DASHBOARD', String(e), 0));
    } finally {
      setBusy(false);
    }
  };

  const chooseTenant = (e: Event) => {
    e.preventDefault();
    if (!pending || !tenant) return;
    props.onSignedIn({ key: pending.key, keyId: pending.keyId, scope: 'admin', tenant: null, asTenant: tenant });
  };

  return (
    <main class="signin" id="main">
      <div class="signin-box">
        <h1>
          <span class="brand-mark" aria-hidden="true" />
          Tally
        </h1>
        {props.notice && (
          <p class="notice" role="status">
            {props.notice}
          </p>
        )}
        {pending ? (
          <form onSubmit={chooseTenant}>
            <p>This admin key reads one tenant at a time.</p>
            <label class="field block">
              <span class="field-label">Tenant</span>
              <select value={tenant} onChange={(e) => setTenant((e.target as HTMLSelectElement).value)}>
                {pending.tenants.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit" class="button primary" disabled={!tenant}>
              Open
            </button>
          </form>
        ) : (
          <form onSubmit={submit}>
            <label class="field block">
              <span class="field-label">Read key</span>
              <input
                type="password"
                name="key"
                autocomplete="off"
                spellcheck={false}
                placeholder="tk_…"
                value={key}
                onInput={(e) => setKey((e.target as HTMLInputElement).value)}
                aria-describedby="key-help"
              />
            </label>
            <p id="key-help" class="muted small">
              A read or admin key of your tenant: <code>tally keys create --tenant &lt;id&gt; --scope read</code>. It is
              kept in this tab only, until you sign out or close it.
            </p>
            <button type="submit" class="button primary" disabled={busy}>
              {busy ? 'Checking…' : 'Sign in'}
            </button>
          </form>
        )}
        {error && <ErrorBox error={error} />}
      </div>
    </main>
  );
}
