/**
 * Drives Debian's chromium (installed by scripts/rig/setup.sh) with playwright-core, for the portal's
 * browser tests. Each page records what a person would call "the page broke": console errors,
 * uncaught exceptions, /api requests that failed on the server or the wire or that the hub refused,
 * and the app's own files failing to load. Every console message and request URL of a page is saved
 * as an artefact, so scripts/check-secret-leaks.mjs looks for keys on the browser side too.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { artefactsDir, saveArtefact } from './secret-ledger.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Playwright's waits in the portal tests (and every page's default): pages poll every 1–2 s, but a
 * 2-core CI box running other test files and image builds can take many times that to render.
 */
export const UI_MS = 60_000;

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
  /** /api requests answered with a 4xx, as `${method} ${url}: ${status}`: fine only where a test provokes one. */
  apiRefusals: string[];
  /** Other requests (the app's script and stylesheet) answered with an error status or not at all. */
  failedRequests: string[];
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
 * Chromium logs every non-2xx fetch as a console error. For /api requests the response itself is
 * recorded (a 4xx under apiRefusals, a 5xx under failedApi), so this line would only repeat it.
 */
function isApiAnswerLog(text: string, url: string): boolean {
  return /^Failed to load resource: the server responded with a status of \d{3}\b/.test(text) && url !== '' && isApi(url);
}

let pagesOpened = 0;

/** A file-name-safe form of a test's title. */
const slugOf = (title: string) => title.replace(/[^a-z0-9]+/gi, '-').slice(0, 80);

/**
 * A page in a fresh context whose relative URLs resolve against `hubUrl`, with UI_MS as its default
 * timeout. Closed at teardown, when its console messages and request URLs are saved as an artefact;
 * when the test failed and EDGEML_TEST_ARTEFACTS is set, its last state is saved there as a PNG too.
 */
export async function newPortalPage(t: ExecutionContext, browser: Browser, hubUrl: string, opts: { viewport?: { width: number; height: number } } = {}): Promise<Page> {
  const context = await browser.newContext({ baseURL: hubUrl, viewport: opts.viewport ?? { width: 1280, height: 800 } });
  context.setDefaultTimeout(UI_MS);
  const page = await context.newPage();
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], failedApi: [], apiRefusals: [], failedRequests: [] };
  problemsOf.set(page, problems);
  /** Everything the page said and asked for, in order, for the artefact. */
  const transcript: string[] = [];
  page.on('console', (msg) => {
    const { url } = msg.location();
    const line = url ? `${msg.text()} (${url})` : msg.text();
    transcript.push(`console.${msg.type()} ${line}`);
    if (msg.type() === 'error' && !isApiAnswerLog(msg.text(), url)) problems.consoleErrors.push(line);
  });
  page.on('pageerror', (err) => {
    const stack = err.stack ?? String(err);
    transcript.push(`pageerror ${stack}`);
    problems.pageErrors.push(stack);
  });
  page.on('request', (req) => transcript.push(`request ${req.method()} ${req.url()}`));
  page.on('response', (res) => {
    const status = res.status();
    const line = `${res.request().method()} ${res.url()}: ${status}`;
    if (!isApi(res.url())) {
      if (status >= 400) problems.failedRequests.push(line);
    } else if (status >= 500) problems.failedApi.push(line);
    else if (status >= 400) problems.apiRefusals.push(line);
  });
  page.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText ?? 'failed';
    transcript.push(`requestfailed ${req.method()} ${req.url()}: ${reason}`);
    // A request cut short by a navigation or by closing the page is not a failure of the hub.
    if (reason === 'net::ERR_ABORTED') return;
    (isApi(req.url()) ? problems.failedApi : problems.failedRequests).push(`${req.method()} ${req.url()}: ${reason}`);
  });
  const name = `browser-${process.pid}-${++pagesOpened}-${slugOf(t.title)}`;
  t.teardown(async () => {
    if (!t.passed && process.env.EDGEML_TEST_ARTEFACTS) {
      const path = join(artefactsDir(), `${name}-failure.png`);
      await page.screenshot({ path, fullPage: true, timeout: 10_000 }).then(
        () => t.log(`failed page saved: ${path}`),
        () => undefined,
      );
    }
    await context.close();
    saveArtefact(`${name}.log`, transcript.map((line) => `${line}\n`).join(''));
  });
  return page;
}

/**
 * Fails the test on anything recorded for the page except the /api refusals the test provokes on
 * purpose, each named by a pattern of `${method} ${url}: ${status}`; a pattern no refusal matched
 * fails too, so an allowance cannot outlive the refusal it was written for.
 */
export function assertNoConsoleErrors(t: ExecutionContext, page: Page, { refusals = [] }: { refusals?: RegExp[] } = {}): void {
  const { apiRefusals, ...problems } = pageProblems(page);
  const unexpected = apiRefusals.filter((line) => !refusals.some((pattern) => pattern.test(line)));
  t.deepEqual({ ...problems, apiRefusals: unexpected }, { consoleErrors: [], pageErrors: [], failedApi: [], failedRequests: [], apiRefusals: [] }, `the page at ${page.url()} reported errors`);
  const unused = refusals.filter((pattern) => !apiRefusals.some((line) => pattern.test(line)));
  t.deepEqual(unused.map(String), [], `refusals the test expected at ${page.url()} did not happen (seen: ${JSON.stringify(apiRefusals)})`);
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
