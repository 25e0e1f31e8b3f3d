/**
 * Drives Debian's chromium (installed by scripts/rig/setup.sh) with playwright-core, for the portal's
 * browser tests. Each page records what a person would call "the page broke": console errors,
 * uncaught exceptions and /api requests that failed on the server or the wire.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { artefactsDir } from './secret-ledger.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The launch flags: nothing talks to the network but the pages the tests open. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function openBrowser(t: ExecutionContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** What went wrong in a page since it was opened; each entry is one readable line. */
export interface PageProblems {
  consoleErrors: string[];
  pageErrors: string[];
  /** /api requests answered with a 5xx, or that got no answer at all. */
  failedApi: string[];
}

const problemsOf = new WeakMap<Page, PageProblems>();

/** The problems recorded for a page made by newPortalPage. */
export function pageProblems(page: Page): PageProblems {
  const problems = problemsOf.get(page);
  if (!problems) throw new Error('pageProblems: this page was not made by newPortalPage');
  return problems;
}

function isApi(url: string): boolean {
  return new URL(url).pathname.startsWith('/api/');
}

/**
 * Chromium logs every non-2xx fetch as a console error. A 4xx from the API is an answer the
 * portal must show as a message (wrong key, missing scope), which the tests check on the page;
 * a 5xx is recorded under failedApi instead.
 */
function isApiAnswerLog(text: string, url: string): boolean {
  return /^Failed to load resource: the server responded with a status of \d{3}\b/.test(text) && url !== '' && isApi(url);
}

let failureShots = 0;

/**
 * A page in a fresh context whose relative URLs resolve against `hubUrl`. Closed at teardown; when
 * the test failed and EDGEML_TEST_ARTEFACTS is set, the page's last state is saved there as a PNG.
 */
export async function newPortalPage(t: ExecutionContext, browser: Browser, hubUrl: string, opts: { viewport?: { width: number; height: number } } = {}): Promise<Page> {
  const context = await browser.newContext({ baseURL: hubUrl, viewport: opts.viewport ?? { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], failedApi: [] };
  problemsOf.set(page, problems);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const { url } = msg.location();
    if (isApiAnswerLog(msg.text(), url)) return;
    problems.consoleErrors.push(url ? `${msg.text()} (${url})` : msg.text());
  });
  page.on('pageerror', (err) => problems.pageErrors.push(err.stack ?? String(err)));
  page.on('response', (res) => {
    if (res.status() >= 500 && isApi(res.url())) problems.failedApi.push(`${res.request().method()} ${res.url()}: ${res.status()}`);
  });
  page.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText ?? 'failed';
    // A poll cut short by a navigation or by closing the page is not a failure of the hub.
    if (reason === 'net::ERR_ABORTED' || !isApi(req.url())) return;
    problems.failedApi.push(`${req.method()} ${req.url()}: ${reason}`);
  });
  t.teardown(async () => {
    if (!t.passed && process.env.EDGEML_TEST_ARTEFACTS) {
      const slug = t.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 80);
      const path = join(artefactsDir(), `portal-failure-${process.pid}-${++failureShots}-${slug}.png`);
      await page.screenshot({ path, fullPage: true, timeout: 10_000 }).then(
        () => t.log(`failed page saved: ${path}`),
        () => undefined,
      );
    }
    await context.close();
  });
  return page;
}

export function assertNoConsoleErrors(t: ExecutionContext, page: Page): void {
  const problems = pageProblems(page);
  t.deepEqual(problems, { consoleErrors: [], pageErrors: [], failedApi: [] }, `the page at ${page.url()} reported errors`);
}

/** Signs in through the portal's form and waits for the app behind it. */
export async function signIn(page: Page, hubUrl: string, key: string): Promise<void> {
  await page.goto(`${hubUrl}/ui/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('nav[aria-label="Main"]').waitFor();
}

const DOCS_DIR = fileURLToPath(new URL('../../docs/', import.meta.url));

/** Saves `docs/portal-NAME.png` for the README, only when EDGEML_PORTAL_SCREENSHOTS=1 (so test runs leave the tree alone). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.EDGEML_PORTAL_SCREENSHOTS !== '1') return;
  mkdirSync(DOCS_DIR, { recursive: true });
  await page.screenshot({ path: join(DOCS_DIR, `portal-${name}.png`) });
}
