/**
 * Tar entries for a dump, many at a time into one Buffer. The bytes are those tar-stream's pack
 * writes for the same entries (ustar headers, the name split into prefix/name when over 100
 * bytes, a pax header when it does not fit or is not ASCII), so tar-stream, GNU tar and bsdtar
 * read it; but a page of 500 objects costs one allocation instead of a stream per entry.
 */

const BLOCK = 512;
/** Two empty blocks: the end of an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

export interface TarFile {
  name: string;
  body: string | Buffer;
}

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

/** The entries (regular files), header, body and padding each, as one Buffer. */
export function tarFiles(files: TarFile[], opts: TarOptions): Buffer {
  const headers = new Headers(opts);
  const sizes: number[] = [];
  const names: ({ name: string; prefix: string } | Buffer)[] = [];
  let total = 0;
  for (const f of files) {
    const size = typeof f.body === 'string' ? Buffer.byteLength(f.body) : f.body.length;
    const name = ustarName(f.name) ?? paxPath(f.name);
    sizes.push(size);
    names.push(name);
    total += BLOCK + padded(size) + (Buffer.isBuffer(name) ? BLOCK + padded(name.length) : 0);
  }
  // Not zero-filled: every byte is written below (headers, bodies, then the padding).
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  const pad = (from: number, to: number) => {
    if (to > from) out.fill(0, from, to);
  };
  for (let i = 0; i < files.length; i++) {
    const body = files[i]!.body;
    const size = sizes[i]!;
    const name = names[i]!;
    if (Buffer.isBuffer(name)) {
      // tar-stream's layout: a "PaxHeader" entry holding the path, then the file under that name too.
      headers.write(out, off, 'PaxHeader', '', name.length, TYPE_PAX);
      off += BLOCK;
      name.copy(out, off);
      pad(off + name.length, off + padded(name.length));
      off += padded(name.length);
      headers.write(out, off, 'PaxHeader', '', size, TYPE_FILE);
    } else {
      headers.write(out, off, name.name, name.prefix, size, TYPE_FILE);
    }
    off += BLOCK;
    if (typeof body === 'string') out.write(body, off, 'utf8');
    else body.copy(out, off);
    pad(off + size, off + padded(size));
    off += padded(size);
  }
  return out;
}
