// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum both PNG chunks and zip
// entries use. A precomputed 256-entry table: one lookup per byte. Written here rather than taken
// from zlib.crc32 because that only exists from Node 20.15 and the service supports Node >= 20.

const TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** CRC-32 of `bytes`; pass the previous result as `crc` to continue over several buffers. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
