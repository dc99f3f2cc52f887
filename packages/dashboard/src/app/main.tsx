/**
 * The dashboard's entry: applies the theme, then shows sign-in or the shell. Styles are imported here, all
 * of them, so esbuild emits one stylesheet that index.html links (a stylesheet imported by a lazily
 * loaded page would be emitted apart and never linked).
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { configureApi } from './api.js';
import { Shell } from './shell.js';
import { SignIn } from './signin.js';
import { type Session, type SessionState, clearSession, loadSession, saveSession } from './session.js';
import { applyTheme, loadTheme } from './theme.js';
import { useHashRoute } from './url.js';

function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [notice, setNotice] = useState<string>();
  const route = useHashRoute();

  // Before any child renders and calls the API.
  configureApi(session, () => {
    clearSession();
    setSession(undefined);
    setNotice('The server no longer accepts this key (revoked?): sign in again.');
  });

  const state = useMemo<SessionState | undefined>(
    () =>
      session && {
        session,
        signOut: () => {
          clearSession();
          setNotice('Signed out.');
          setSession(undefined);
        },
      },
    [session],
  );

  useEffect(() => {
    if (!session) document.title = 'Sign in · Tally';
  }, [session]);

  if (!state) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          saveSession(s);
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  }
  return <Shell route={route} session={state} />;
}

applyTheme(loadTheme());
render(<App />, document.getElementById('app') as HTMLElement);
