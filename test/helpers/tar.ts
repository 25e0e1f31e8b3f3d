/** Tar archives built in memory for tests, including malicious ones a real packer would refuse. */
import tarStream, { type Header } from 'tar-stream';

export type TarSpec = Partial<Header> & { name: string; content?: string | Buffer };

export async function tarOf(specs: TarSpec[]): Promise<Buffer> {
  const tar = tarStream.pack();
  const chunks: Buffer[] = [];
  // Read while writing: tar-stream holds an entry's callback until its output is consumed.
  tar.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => tar.on('end', () => resolve()));
  for (const { content, ...header } of specs) {
    await new Promise<void>((resolve, reject) => tar.entry(header as Header, content ?? '', (err) => (err ? reject(err) : resolve())));
  }
  tar.finalize();
  await ended;
  return Buffer.concat(chunks);
}
