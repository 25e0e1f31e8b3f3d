/**
 * A model upload that stops sending is ended after `--upload-idle-timeout` without a byte: the
 * client gets 408, the connection and the temp file go, and nothing is stored. One that keeps
 * sending, however slowly, is not cut.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import test from 'ava';
import type { ModelVersion } from '../../shared/api/models.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api, blobFiles } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const IDLE = '1s';

function openUpload(hub: HubProcess, name: string, length: number): { socket: Socket; received: () => string } {
  const [host, port] = [hub.http.slice(0, hub.http.lastIndexOf(':')), Number(hub.http.slice(hub.http.lastIndexOf(':') + 1))];
  const socket = connect(port, host);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(
    `POST /api/v1/models/${name}/versions?filename=model.bin HTTP/1.1\r\nhost: ${hub.http}\r\nauthorization: Bearer ${hub.adminKey}\r\n` +
      `content-type: application/octet-stream\r\ncontent-length: ${length}\r\n\r\n`,
  );
  return { socket, received: () => Buffer.concat(chunks).toString('latin1') };
}

test('an upload with no byte for the idle timeout gets 408, loses its connection and temp file, and stores nothing', async (t) => {
  const hub = await startHub(t, ['--upload-idle-timeout', IDLE]);
  const { socket, received } = openUpload(hub, 'stalled', 1024 * 1024);
  t.teardown(() => socket.destroy());
  socket.write(Buffer.alloc(64 * 1024, 1));

  await once(socket, 'close');
  const answer = received();
  t.regex(answer, /^HTTP\/1\.1 408 /);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  t.is(body.error.code, 'HUB_E_REQUEST_TIMEOUT');
  t.regex(body.error.message, /no data for 1 s/);
  await waitFor('the temp file to be removed', async () => (await blobFiles(hub.data)).tmp.length === 0);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });
  t.is((await api(hub, 'GET', '/api/v1/models/stalled', { key: hub.adminKey })).status, 404);
});

test('a slow upload that keeps sending within the idle timeout is stored', async (t) => {
  const hub = await startHub(t, ['--upload-idle-timeout', IDLE]);
  // Five pieces 400 ms apart: longer than the idle timeout in all, never idle for that long.
  const pieces = 5;
  const piece = Buffer.alloc(1000, 2);
  const { socket, received } = openUpload(hub, 'slow', pieces * piece.length);
  t.teardown(() => socket.destroy());
  for (let i = 0; i < pieces; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 400));
    socket.write(piece);
  }
  const answer = await waitFor('the answer', () => (received().includes('\r\n\r\n{') && received().endsWith('}') ? received() : undefined), 15_000);
  t.regex(answer, /^HTTP\/1\.1 201 /);
  t.like(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as ModelVersion, { name: 'slow', version: 1, size: pieces * piece.length });
});
