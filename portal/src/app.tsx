/**
 * The portal's shell: the sign-in gate, the main navigation and the route table. Every page is a URL
 * under /ui that can be bookmarked; a bookmarked page opened without a key signs in first, then shows it.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useErrorBoundary, useRef, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { api } from './api.js';
import { ErrorMessage } from './components/error-message.js';
import { Loading } from './components/loading.js';
import { SessionProvider, sessionOf, useSession, type Identity } from './session.js';
import { currentKey, expireSession, onSessionChange } from './session-store.js';
import { SignIn } from './sign-in.js';
import BuildPage from './pages/build.js';
import BuildsPage from './pages/builds.js';
import DeploymentPage from './pages/deployment.js';
import DeploymentsPage from './pages/deployments.js';
import DevicePage from './pages/device.js';
import FleetPage from './pages/fleet.js';
import ModelPage from './pages/model.js';
import ModelsPage from './pages/models.js';
import RetrainingPage from './pages/retraining.js';
import RetrainingRunPage from './pages/retraining-run.js';
import RolloutPage from './pages/rollout.js';
import TelemetryPage from './pages/telemetry.js';

const NAV: { href: string; label: string; section: string }[] = [
  { href: '/ui/', label: 'Fleet', section: 'devices' },
  { href: '/ui/models', label: 'Models', section: 'models' },
  { href: '/ui/builds', label: 'Builds', section: 'builds' },
  { href: '/ui/deployments', label: 'Deployments', section: 'deployments' },
  { href: '/ui/telemetry', label: 'Telemetry', section: 'telemetry' },
  { href: '/ui/retraining', label: 'Retraining', section: 'retraining' },
];

/** Which nav entry a path belongs to (a rollout is part of Deployments, a device of Fleet). */
function sectionOf(path: string): string {
  const first = path.replace(/^\/ui\/?/, '').split('/')[0] ?? '';
  if (first === '' || first === 'devices') return 'devices';
  if (first === 'rollouts') return 'deployments';
  return first;
}

function Nav() {
  const { path } = useLocation();
  const session = useSession();
  const current = sectionOf(path);
  return (
    <header class="top">
      <a class="brand" href="/ui/">
        edgeml
      </a>
      <nav aria-label="Main">
        <ul>
          {NAV.map((n) => (
            <li key={n.href}>
              <a href={n.href} aria-current={n.section === current ? (path === n.href ? 'page' : 'true') : undefined}>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="who">
        <span title={`key ${session.identity.id}`}>
          {session.identity.name} <span class="muted">({session.identity.scope})</span>
        </span>
        <button type="button" class="link" onClick={() => session.signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        This page does not exist. <a href="/ui/">Back to the fleet</a>.
      </p>
    </section>
  );
}

/** A page that throws while it renders shows why, and the nav stays (instead of a blank tab). */
function PageBoundary({ children }: { children: ComponentChildren }) {
  const [error] = useErrorBoundary();
  return error ? <ErrorMessage error={error instanceof Error ? error : new Error(String(error))} what="This page failed" /> : <>{children}</>;
}

function Pages() {
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // A new page moves focus to its content, as a page load would, so keyboard and screen-reader
  // users learn that it changed (the first page keeps the browser's own start).
  useEffect(() => {
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [path]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Nav />
      <main id="main" tabIndex={-1} ref={main}>
        <PageBoundary key={path}>
          <Router>
            <Route path="/ui" component={FleetPage} />
            <Route path="/ui/" component={FleetPage} />
            <Route path="/ui/devices/:id" component={DevicePage} />
            <Route path="/ui/models" component={ModelsPage} />
            <Route path="/ui/models/:name" component={ModelPage} />
            <Route path="/ui/builds" component={BuildsPage} />
            <Route path="/ui/builds/:id" component={BuildPage} />
            <Route path="/ui/deployments" component={DeploymentsPage} />
            <Route path="/ui/deployments/:service" component={DeploymentPage} />
            <Route path="/ui/rollouts/:id" component={RolloutPage} />
            <Route path="/ui/telemetry" component={TelemetryPage} />
            <Route path="/ui/retraining" component={RetrainingPage} />
            <Route path="/ui/retraining/runs/:id" component={RetrainingRunPage} />
            <Route default component={NotFound} />
          </Router>
        </PageBoundary>
      </main>
    </>
  );
}

type Gate = { state: 'checking' } | { state: 'signed-out'; reason: string | null } | { state: 'signed-in'; identity: Identity } | { state: 'failed'; error: Error };

export function App() {
  const [gate, setGate] = useState<Gate>(() => (currentKey() ? { state: 'checking' } : { state: 'signed-out', reason: null }));

  useEffect(() => onSessionChange((reason) => (currentKey() ? undefined : setGate({ state: 'signed-out', reason }))), []);

  useEffect(() => {
    if (gate.state !== 'checking') return;
    api.get<Identity>('/api/v1/whoami').then(
      (identity) => setGate({ state: 'signed-in', identity }),
      (error: Error) => setGate(currentKey() ? { state: 'failed', error } : { state: 'signed-out', reason: error.message }),
    );
  }, [gate.state]);

  if (gate.state === 'checking') return <Loading what="Checking your key" />;
  if (gate.state === 'failed')
    return (
      <main class="sign-in">
        <ErrorMessage error={gate.error} what="The hub could not be asked who you are" />
        <div class="actions">
          <button type="button" onClick={() => setGate({ state: 'checking' })}>
            Try again
          </button>
          <button type="button" class="secondary" onClick={() => expireSession(null)}>
            Sign in with another key
          </button>
        </div>
      </main>
    );
  if (gate.state === 'signed-out') return <SignIn reason={gate.reason} onSignedIn={(identity) => setGate({ state: 'signed-in', identity })} />;
  return (
    <SessionProvider session={sessionOf(gate.identity)}>
      <LocationProvider>
        <Pages />
      </LocationProvider>
    </SessionProvider>
  );
}
