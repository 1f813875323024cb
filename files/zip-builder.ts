// The bytes of a zip archive, produced entry by entry so the archive can be streamed: each call
// returns what to write next, and the builder keeps only the central directory (one compact
// record per entry, ~65 bytes for a QR image) until finish(). No I/O and no pacing here; the
// caller decides when to ask for more (see bundle-zip.ts).
//
// Zip64 is used only where the classic format overflows: more than 65,534 entries, or a central
// directory / local header beyond 4 GiB. Single entries are limited to 4 GiB, which keeps the local
// headers classic and readable everywhere.
import { crc32 } from './crc32';

const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
const FLAG_DATA_DESCRIPTOR = 0x0008; // crc and sizes follow the data (not known when it starts)
const FLAG_UTF8_NAME = 0x0800;
const VERSION_NEEDED = 20; // 2.0: deflate, data descriptors
const VERSION_NEEDED_ZIP64 = 45;
const VERSION_MADE_BY = (3 << 8) | VERSION_NEEDED_ZIP64; // 3 = Unix, so the file mode below counts
const FILE_MODE = (0o100644 << 16) >>> 0; // regular file, rw-r--r--
/** Central directory records are joined into blocks of this many, to spare an object per entry. */
const RECORDS_PER_BLOCK = 1024;

interface OpenEntry {
  name: Buffer;
  offset: number;
}

export class ZipBuilder {
  /** Bytes handed out so far, i.e. the offset of whatever comes next. */
  private offset = 0;
  private entries = 0;
  private readonly centralBlocks: Buffer[] = [];
  private centralPending: Buffer[] = [];
  private open: OpenEntry | null = null;
  private readonly dosTime: number;
  private readonly dosDate: number;

  /** `modified` is stamped on every entry (zip stores local time at 2-second resolution). */
  constructor(modified = new Date()) {
    const year = Math.max(modified.getFullYear(), 1980); // the DOS epoch
    this.dosTime = (modified.getHours() << 11) | (modified.getMinutes() << 5) | (modified.getSeconds() >> 1);
    this.dosDate = ((year - 1980) << 9) | ((modified.getMonth() + 1) << 5) | modified.getDate();
  }

  /** Header and data of an entry stored as is: for data that is already compressed (PNG). */
  stored(name: string, data: Buffer): [Buffer, Buffer] {
    this.assertNoOpenEntry();
    assertFitsIn32Bits(name, data.length);
    const entry = { name: Buffer.from(name), offset: this.offset };
    const crc = crc32(data);
    const header = this.localHeader(entry.name, METHOD_STORE, 0, crc, data.length, data.length);
    this.offset += header.length + data.length;
    this.record(entry, METHOD_STORE, 0, crc, data.length, data.length);
    return [header, data];
  }

  /** Header of a deflated entry whose data the caller streams next, then closes with endDeflated(). */
  beginDeflated(name: string): Buffer {
    this.assertNoOpenEntry();
    this.open = { name: Buffer.from(name), offset: this.offset };
    const header = this.localHeader(this.open.name, METHOD_DEFLATE, FLAG_DATA_DESCRIPTOR, 0, 0, 0);
    this.offset += header.length;
    return header;
  }

  /** The data descriptor closing the open deflated entry, given what the caller streamed. */
  endDeflated(crc: number, compressedSize: number, size: number): Buffer {
    const entry = this.open;
    if (!entry) throw new Error('no deflated entry is open');
    assertFitsIn32Bits(entry.name.toString(), compressedSize, size);
    this.open = null;
    const descriptor = Buffer.allocUnsafe(16);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(crc, 4);
    descriptor.writeUInt32LE(compressedSize, 8);
    descriptor.writeUInt32LE(size, 12);
    this.offset += compressedSize + descriptor.length;
    this.record(entry, METHOD_DEFLATE, FLAG_DATA_DESCRIPTOR, crc, compressedSize, size);
    return descriptor;
  }

  /** Central directory and end records: the last bytes of the archive. */
  finish(): Buffer[] {
    this.assertNoOpenEntry();
    const centralOffset = this.offset;
    const central = [...this.centralBlocks, ...this.centralPending];
    const centralSize = central.reduce((sum, block) => sum + block.length, 0);
    const zip64 = this.entries >= MAX16 || centralSize >= MAX32 || centralOffset >= MAX32;
    const end: Buffer[] = [];
    if (zip64) {
      const record = Buffer.alloc(56);
      record.writeUInt32LE(0x06064b50, 0);
      writeUInt64LE(record, record.length - 12, 4); // size of the rest of this record
      record.writeUInt16LE(VERSION_MADE_BY, 12);
      record.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
      // 16, 20: this disk and the central directory's disk, both 0
      writeUInt64LE(record, this.entries, 24);
      writeUInt64LE(record, this.entries, 32);
      writeUInt64LE(record, centralSize, 40);
      writeUInt64LE(record, centralOffset, 48);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(0x07064b50, 0);
      writeUInt64LE(locator, centralOffset + centralSize, 8); // where the zip64 record starts
      locator.writeUInt32LE(1, 16); // total number of disks
      end.push(record, locator);
    }
    // Fields that overflow hold their maximum, telling readers to use the zip64 record instead.
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(Math.min(this.entries, MAX16), 8);
    eocd.writeUInt16LE(Math.min(this.entries, MAX16), 10);
    eocd.writeUInt32LE(Math.min(centralSize, MAX32), 12);
    eocd.writeUInt32LE(Math.min(centralOffset, MAX32), 16);
    end.push(eocd);
    return [...central, ...end];
  }

  private localHeader(name: Buffer, method: number, flags: number, crc: number, compressedSize: number, size: number): Buffer {
    const header = Buffer.allocUnsafe(30 + name.length);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(VERSION_NEEDED, 4);
    header.writeUInt16LE(flags | FLAG_UTF8_NAME, 6);
    header.writeUInt16LE(method, 8);
    header.writeUInt16LE(this.dosTime, 10);
    header.writeUInt16LE(this.dosDate, 12);
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(compressedSize, 18);
    header.writeUInt32LE(size, 22);
    header.writeUInt16LE(name.length, 26);
    header.writeUInt16LE(0, 28); // extra field length
    name.copy(header, 30);
    return header;
  }

  /** Appends the entry's central directory record. */
  private record(entry: OpenEntry, method: number, flags: number, crc: number, compressedSize: number, size: number): void {
    // Only the local header offset can overflow (sizes are checked); then it moves to a zip64 extra field.
    const zip64 = entry.offset >= MAX32;
    const extraLength = zip64 ? 12 : 0;
    const rec = Buffer.allocUnsafe(46 + entry.name.length + extraLength);
    rec.writeUInt32LE(0x02014b50, 0);
    rec.writeUInt16LE(VERSION_MADE_BY, 4);
    rec.writeUInt16LE(zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
    rec.writeUInt16LE(flags | FLAG_UTF8_NAME, 8);
    rec.writeUInt16LE(method, 10);
    rec.writeUInt16LE(this.dosTime, 12);
    rec.writeUInt16LE(this.dosDate, 14);
    rec.writeUInt32LE(crc, 16);
    rec.writeUInt32LE(compressedSize, 20);
    rec.writeUInt32LE(size, 24);
    rec.writeUInt16LE(entry.name.length, 28);
    rec.writeUInt16LE(extraLength, 30);
    rec.writeUInt16LE(0, 32); // comment length
    rec.writeUInt16LE(0, 34); // disk number
    rec.writeUInt16LE(0, 36); // internal attributes
    rec.writeUInt32LE(FILE_MODE, 38);
    rec.writeUInt32LE(Math.min(entry.offset, MAX32), 42);
    entry.name.copy(rec, 46);
    if (zip64) {
      const at = 46 + entry.name.length;
      rec.writeUInt16LE(0x0001, at); // zip64 extended information
      rec.writeUInt16LE(8, at + 2);
      writeUInt64LE(rec, entry.offset, at + 4);
    }
    this.entries++;
    this.centralPending.push(rec);
    if (this.centralPending.length === RECORDS_PER_BLOCK) {
      this.centralBlocks.push(Buffer.concat(this.centralPending));
      this.centralPending = [];
    }
  }

  private assertNoOpenEntry(): void {
    if (this.open) throw new Error(`entry ${this.open.name.toString()} is still open`);
  }
}

function assertFitsIn32Bits(name: string, ...sizes: number[]): void {
  if (sizes.some((size) => size >= MAX32)) throw new RangeError(`zip entry ${name} is 4 GiB or more, which is not supported`);
}

/** Integers up to 2^53, which is as far as byte offsets in a JS number go. */
function writeUInt64LE(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % 0x100000000, at);
  buf.writeUInt32LE(Math.floor(value / 0x100000000), at + 4);
}
