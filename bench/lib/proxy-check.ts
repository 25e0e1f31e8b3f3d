/**
 * Before a gateway benchmark measures anything: each target answers the sample with the
 * container's answer, and the gateway refuses a wrong key (so auth is on in what is measured).
 */
import { request } from 'undici';
import { SAMPLE_BODY } from './scoring-container.js';

async function post(url: string, key: string): Promise<{ status: number; body: string }> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: SAMPLE_BODY,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

export async function checkAnswers(gatewayUrl: string, nginxUrl: string, directUrl: string, key: string): Promise<void> {
  for (const [name, url] of [['direct', directUrl], ['edgeml', gatewayUrl], ['nginx', nginxUrl]] as const) {
    const { status, body } = await post(url, key);
    if (status !== 200 || (JSON.parse(body) as { y?: unknown }).y !== 2) throw new Error(`${name} (${url}) answered ${status} ${body.slice(0, 200)} to the sample`);
  }
  const wrong = await post(gatewayUrl, 'not-the-key');
  if (wrong.status !== 401) throw new Error(`the gateway answered ${wrong.status}, not 401, to a wrong key: auth is not on`);
}
