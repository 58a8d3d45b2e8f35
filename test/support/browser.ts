/**
 * Headless Chromium for tests that open generated pages: where the browser is, whether its absence may skip
 * a test, and a small PNG reader to look at screenshots pixel by pixel (no image package needed).
 */
import { existsSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

/** The Chromium executable: CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Why browser tests cannot run here, or undefined when they can. On CI (CI set) a missing browser is not a
 * reason to skip: the caller must fail, since `.ci/run` installs it and a silent skip would hide a broken setup.
 */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  return `Chromium not found at ${CHROMIUM_PATH} (install Debian's chromium or set CHROMIUM_PATH)`;
}

/** Launch options for playwright-core's chromium.launch: the tests run as root, hence no sandbox. */
export function chromiumLaunchOptions(): { executablePath: string; args: string[] } {
  return { executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] };
}

/** A decoded image, 4 bytes (RGBA) per pixel, row-major. */
export interface Rgba {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/**
 * Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are). Throws on anything
 * else rather than guessing.
 */
export function decodePng(png: Uint8Array): Rgba {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const signature = '89504e470d0a1a0a';
  if (buf.subarray(0, 8).toString('hex') !== signature)
    throw new Error('decodePng: not a PNG (bad signature)');
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Buffer[] = [];
  for (let off = 8; off + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      colorType = body[9] ?? -1;
      const interlace = body[12];
      if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
        throw new Error(
          `decodePng: unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${interlace})`,
        );
      }
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  if (width === 0 || height === 0) throw new Error('decodePng: no IHDR chunk');
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length < height * (stride + 1))
    throw new Error(`decodePng: ${raw.length} bytes of image data is too short`);
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const x = row[i] ?? 0;
      const a = i >= bpp ? (cur[i - bpp] ?? 0) : 0;
      const b = prev[i] ?? 0;
      const c = i >= bpp ? (prev[i - bpp] ?? 0) : 0;
      let v: number;
      switch (filter) {
        case 0:
          v = x;
          break;
        case 1:
          v = x + a;
          break;
        case 2:
          v = x + b;
          break;
        case 3:
          v = x + ((a + b) >> 1);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new Error(`decodePng: bad filter ${filter} on row ${y}`);
      }
      cur[i] = v & 0xff;
    }
    for (let px = 0; px < width; px++) {
      const o = (y * width + px) * 4;
      out[o] = cur[px * bpp] ?? 0;
      out[o + 1] = cur[px * bpp + 1] ?? 0;
      out[o + 2] = cur[px * bpp + 2] ?? 0;
      out[o + 3] = bpp === 4 ? (cur[px * bpp + 3] ?? 255) : 255;
    }
    prev.set(cur);
  }
  return { width, height, data: out };
}

/** Parses `#rrggbb` into [r, g, b]. */
export function hexRgb(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (m === null) throw new Error(`hexRgb: not a #rrggbb colour: ${JSON.stringify(hex)}`);
  return [Number.parseInt(m[1] ?? '', 16), Number.parseInt(m[2] ?? '', 16), Number.parseInt(m[3] ?? '', 16)];
}

/**
 * Counts pixels within `tolerance` (per channel) of a colour, optionally only in columns [x0, x1). Line
 * edges are anti-aliased, so a line's core pixels match exactly and its edges do not; the tolerance only
 * absorbs colour-management rounding.
 */
export function countColor(
  img: Rgba,
  rgb: readonly [number, number, number],
  tolerance = 10,
  columns: readonly [number, number] = [0, img.width],
): number {
  const [r, g, b] = rgb;
  const x0 = Math.max(0, Math.floor(columns[0]));
  const x1 = Math.min(img.width, Math.ceil(columns[1]));
  let n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * img.width + x) * 4;
      if (
        Math.abs((img.data[o] ?? 0) - r) <= tolerance &&
        Math.abs((img.data[o + 1] ?? 0) - g) <= tolerance &&
        Math.abs((img.data[o + 2] ?? 0) - b) <= tolerance
      ) {
        n++;
      }
    }
  }
  return n;
}
