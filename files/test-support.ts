// Helpers shared by the zip tests: read an archive back with yauzl (an independent reader) and
// consume a stream without keeping it.
import { Writable } from 'node:stream';
import yauzl from 'yauzl';

export interface ZipEntryRead {
  name: string;
  method: number;
  data: Buffer;
}

/** Every entry in archive order; `wantData` decides which ones to inflate (all by default). */
export function readZip(zip: Buffer, wantData: (name: string) => boolean = () => true): Promise<ZipEntryRead[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, strictFileNames: true }, (openError, zipfile) => {
      if (openError) return reject(openError);
      const entries: ZipEntryRead[] = [];
      zipfile.on('error', reject);
      zipfile.on('end', () => resolve(entries));
      zipfile.on('entry', (entry: yauzl.Entry) => {
        const read = { name: entry.fileName, method: entry.compressionMethod, data: Buffer.alloc(0) };
        entries.push(read);
        if (!wantData(entry.fileName)) return zipfile.readEntry();
        zipfile.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            read.data = Buffer.concat(chunks);
            zipfile.readEntry();
          });
        });
      });
      zipfile.readEntry();
    });
  });
}

/** A sink that only counts bytes; `onChunk` runs after each write. */
export function countingSink(onChunk: (bytesSoFar: number) => void = () => {}): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      sink.bytes += chunk.length;
      onChunk(sink.bytes);
      done();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}
