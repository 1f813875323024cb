import { deflateRawSync } from 'node:zlib';
import { crc32 } from './crc32';
import { readZip } from './test-support';
import { ZipBuilder } from './zip-builder';

function build(write: (zip: ZipBuilder) => Buffer[]): Buffer {
  return Buffer.concat(write(new ZipBuilder(new Date(2025, 0, 15, 8, 30, 12))));
}

describe('ZipBuilder', () => {
  it('writes stored and streamed-deflated entries that an independent reader accepts', async () => {
    const text = Buffer.from('hello, '.repeat(1000));
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const archive = build((zip) => {
      const compressed = deflateRawSync(text);
      return [
        zip.beginDeflated('devices.csv'),
        compressed,
        zip.endDeflated(crc32(text), compressed.length, text.length),
        ...zip.stored('qr/A.png', png),
        ...zip.finish(),
      ];
    });
    const entries = await readZip(archive);
    expect(entries.map(({ name, method }) => [name, method])).toEqual([
      ['devices.csv', 8],
      ['qr/A.png', 0],
    ]);
    expect(entries[0]!.data.equals(text)).toBe(true);
    expect(entries[1]!.data.equals(png)).toBe(true);
  });

  it('switches to zip64 end records past 65,534 entries', async () => {
    const count = 70_000;
    const archive = build((zip) => {
      const parts: Buffer[] = [];
      for (let i = 0; i < count; i++) parts.push(...zip.stored(`qr/${i}.png`, Buffer.from(String(i))));
      parts.push(...zip.finish());
      return parts;
    });
    expect(archive.readUInt16LE(archive.length - 12)).toBe(0xffff); // classic count: "see zip64"
    const entries = await readZip(archive, (name) => name.endsWith('999.png'));
    expect(entries).toHaveLength(count);
    expect(entries[69_999]).toEqual({ name: 'qr/69999.png', method: 0, data: Buffer.from('69999') });
  });

  it('refuses misuse and entries of 4 GiB or more', () => {
    const zip = new ZipBuilder();
    expect(() => zip.endDeflated(0, 0, 0)).toThrow('no deflated entry is open');
    zip.beginDeflated('big.csv');
    expect(() => zip.stored('x', Buffer.alloc(1))).toThrow('big.csv is still open');
    expect(() => zip.endDeflated(0, 2 ** 32, 2 ** 33)).toThrow(RangeError);
  });
});
