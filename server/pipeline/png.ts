// PNG files with generation metadata in the `parameters` text chunk, the key AUTOMATIC1111's web
// UI writes and most image tools read. pngjs encodes the pixels; the text chunk is spliced in by
// hand because pngjs does not write ancillary chunks.
import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';

/** An interleaved RGB image: 3 bytes per pixel, row-major, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type, 'latin1'))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

const isLatin1 = (s: string) => /^[\x00-\xff]*$/.test(s);

/** tEXt when the text is Latin-1 (the PNG spec's encoding for tEXt), iTXt (UTF-8) otherwise. */
export function textChunk(keyword: string, text: string): Buffer {
  const nul = Buffer.from([0]);
  if (isLatin1(text)) {
    return chunk('tEXt', Buffer.concat([Buffer.from(keyword, 'latin1'), nul, Buffer.from(text, 'latin1')]));
  }
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL
  return chunk(
    'iTXt',
    Buffer.concat([Buffer.from(keyword, 'latin1'), nul, Buffer.from([0, 0]), nul, nul, Buffer.from(text, 'utf8')]),
  );
}

/** Encode an RGB image; the same pixels and text always give the same bytes. */
export function encodePng(image: RgbImage, text: Record<string, string> = {}): Buffer {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) {
    throw new RangeError(`image data has ${data.length} bytes, expected ${width}x${height}x3`);
  }
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const encoded = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 9 });
  const iend = encoded.length - 12;
  const chunks = Object.entries(text).map(([k, v]) => textChunk(k, v));
  return Buffer.concat([encoded.subarray(0, iend), ...chunks, encoded.subarray(iend)]);
}

export function decodePng(bytes: Buffer): RgbImage {
  const png = PNG.sync.read(bytes);
  const data = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < png.data.length; i += 4, j += 3) {
    data[j] = png.data[i];
    data[j + 1] = png.data[i + 1];
    data[j + 2] = png.data[i + 2];
  }
  return { width: png.width, height: png.height, data };
}

/** All tEXt and uncompressed iTXt chunks of a PNG, keyword -> text. */
export function readPngText(bytes: Buffer): Record<string, string> {
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file');
  const out: Record<string, string> = {};
  for (let pos = 8; pos + 12 <= bytes.length; ) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (type === 'tEXt') {
      const nul = data.indexOf(0);
      out[data.toString('latin1', 0, nul)] = data.toString('latin1', nul + 1);
    } else if (type === 'iTXt') {
      const nul = data.indexOf(0);
      const compressed = data[nul + 1] === 1;
      const langEnd = data.indexOf(0, nul + 3);
      const transEnd = data.indexOf(0, langEnd + 1);
      if (!compressed) out[data.toString('latin1', 0, nul)] = data.toString('utf8', transEnd + 1);
    }
    if (type === 'IEND') break;
    pos += 12 + length;
  }
  return out;
}
