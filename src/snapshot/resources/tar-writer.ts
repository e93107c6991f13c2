/**
 * Tar entries for a dump, many at a time into one Buffer. The bytes are those tar-stream's pack
 * writes for the same entries (ustar headers, the name split into prefix/name when over 100
 * bytes, a pax header when it does not fit or is not ASCII), so tar-stream, GNU tar and bsdtar
 * read it; but a page of 500 objects costs a buffer instead of a stream per entry.
 */

const BLOCK = 512;
/** Two empty blocks: the end of an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

export interface TarOptions {
  mtime: Date;
  /** Permission bits, e.g. 0o600. */
  mode: number;
}

const TYPE_FILE = 0;
const TYPE_PAX = 72;
const ZEROS = '0000000000000000000';

function octal(value: number, digits: number): string {
  const s = value.toString(8);
  return s.length > digits ? '7777777777777777777'.slice(0, digits) + ' ' : ZEROS.slice(0, digits - s.length) + s + ' ';
}

/** The ustar name and prefix fields, or undefined when the name needs a pax header. */
function ustarName(full: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(full) !== full.length) return undefined;
  let name = full;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  return prefix.length > 155 ? undefined : { name, prefix };
}

/**
 * Headers of one archive: every field but name, prefix, size and type is the same, so each header
 * is a copy of a template, and its checksum the template's plus what differs.
 */
class Headers {
  private readonly template = Buffer.alloc(BLOCK);
  private readonly base: number;

  constructor(opts: TarOptions) {
    const t = this.template;
    t.write(octal(opts.mode & 0o7777, 6), 100, 'latin1');
    t.write(octal(0, 6), 108, 'latin1');
    t.write(octal(0, 6), 116, 'latin1');
    t.write(octal(Math.floor(opts.mtime.getTime() / 1000), 11), 136, 'latin1');
    t.write('ustar\0', 257, 'latin1');
    t.write('00', 263, 'latin1');
    t.write(octal(0, 6), 329, 'latin1');
    t.write(octal(0, 6), 337, 'latin1');
    // The checksum counts its own field as eight spaces.
    let sum = 8 * 32;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += t[i]!;
    this.base = sum;
  }

  /** Writes one 512-byte header at off into buf. */
  write(buf: Buffer, off: number, name: string, prefix: string, size: number, type: number): void {
    this.template.copy(buf, off);
    const sizeField = octal(size, 11);
    buf.write(name, off, 'latin1');
    buf.write(sizeField, off + 124, 'latin1');
    buf[off + 156] = 48 + type;
    if (prefix) buf.write(prefix, off + 345, 'latin1');
    let sum = this.base + 48 + type;
    for (let i = 0; i < name.length; i++) sum += name.charCodeAt(i);
    for (let i = 0; i < prefix.length; i++) sum += prefix.charCodeAt(i);
    for (let i = 0; i < sizeField.length; i++) sum += sizeField.charCodeAt(i);
    buf.write(octal(sum, 6), off + 148, 'latin1');
  }
}

/** A pax record "<len> path=<name>\n", its length counting itself. */
function paxPath(name: string): Buffer {
  const rec = ` path=${name}\n`;
  const len = Buffer.byteLength(rec);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return Buffer.from(`${len + digits}${rec}`);
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * Entries appended one by one into a growing Buffer, taken out a batch at a time: each body is
 * copied in as soon as it is added, so the caller's strings do not outlive it.
 */
export class TarBuffer {
  private readonly headers: Headers;
  private buf: Buffer;
  private off = 0;

  constructor(opts: TarOptions, initialBytes = 1 << 20) {
    this.headers = new Headers(opts);
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes appended since the last take(). */
  get length(): number {
    return this.off;
  }

  /** Appends a regular file. */
  add(name: string, body: string | Buffer): void {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const fits = ustarName(name);
    const pax = fits ? undefined : paxPath(name);
    this.reserve(BLOCK + padded(size) + (pax ? BLOCK + padded(pax.length) : 0));
    const out = this.buf;
    if (pax) {
      // tar-stream's layout: a "PaxHeader" entry holding the path, then the file under that name too.
      this.headers.write(out, this.off, 'PaxHeader', '', pax.length, TYPE_PAX);
      this.off += BLOCK;
      pax.copy(out, this.off);
      this.zero(this.off + pax.length, this.off + padded(pax.length));
      this.off += padded(pax.length);
      this.headers.write(out, this.off, 'PaxHeader', '', size, TYPE_FILE);
    } else {
      this.headers.write(out, this.off, fits!.name, fits!.prefix, size, TYPE_FILE);
    }
    this.off += BLOCK;
    if (typeof body === 'string') out.write(body, this.off, 'utf8');
    else body.copy(out, this.off);
    this.zero(this.off + size, this.off + padded(size));
    this.off += padded(size);
  }

  /** What was appended, as a Buffer of its own; the next entries go into a new one of about that size. */
  take(): Buffer {
    const full = this.buf.subarray(0, this.off);
    this.buf = Buffer.allocUnsafe(Math.max(this.off + (this.off >> 2), 64 * 1024));
    this.off = 0;
    return full;
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.off + n));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }

  // Buffers are not zero-filled: headers are whole blocks, bodies are padded here.
  private zero(from: number, to: number): void {
    if (to > from) this.buf.fill(0, from, to);
  }
}
