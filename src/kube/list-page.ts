/**
 * One page of a list response, kept as the bytes it arrived in: the list's own fields are parsed,
 * each item is parsed only when asked for. A 500-object page is ~1.5 MB of JSON; parsed whole it
 * is one string big enough for V8's large-object space, which a scavenge during the parse moves
 * to the old generation, where it stays until a full GC: the heap of a long dump then grows with
 * every page. Item by item, the strings are small and die young.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export class ListPage {
  private constructor(
    private readonly buf: Buffer,
    /** The list's fields but items: kind, apiVersion, metadata (continue, resourceVersion). */
    readonly fields: Record<string, unknown>,
    /** Start and end offsets of each item, in order. */
    private readonly spans: number[],
  ) {}

  get length(): number {
    return this.spans.length / 2;
  }

  /** Item i, parsed now. */
  item<T>(i: number): T {
    return JSON.parse(this.buf.toString('utf8', this.spans[2 * i], this.spans[2 * i + 1])) as T;
  }

  get metadata(): { continue?: string; resourceVersion?: string } | undefined {
    return this.fields['metadata'] as { continue?: string; resourceVersion?: string } | undefined;
  }

  /**
   * Splits a list's JSON: a top-level object whose "items" is an array (the other fields in any
   * order). Throws a SyntaxError on anything else or on JSON it cannot delimit; the values
   * themselves are checked by JSON.parse when read.
   */
  static parse(buf: Buffer): ListPage {
    let i = skipSpace(buf, buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0);
    if (buf[i] !== 0x7b) throw new SyntaxError('a list response is not a JSON object');
    const fields: Record<string, unknown> = {};
    const spans: number[] = [];
    let items = false;
    i = skipSpace(buf, i + 1);
    if (buf[i] === 0x7d) throw new SyntaxError('a list response has no items');
    for (;;) {
      if (buf[i] !== QUOTE) throw new SyntaxError(`unexpected byte at ${i} of a list response`);
      const keyEnd = stringEnd(buf, i);
      const key = JSON.parse(buf.toString('utf8', i, keyEnd)) as string;
      i = skipSpace(buf, keyEnd);
      if (buf[i] !== 0x3a) throw new SyntaxError(`unexpected byte at ${i} of a list response`);
      i = skipSpace(buf, i + 1);
      if (key === 'items' && buf[i] === 0x5b) {
        items = true;
        i = skipSpace(buf, i + 1);
        if (buf[i] === 0x5d) i++;
        else {
          for (;;) {
            const end = valueEnd(buf, i);
            spans.push(i, end);
            i = skipSpace(buf, end);
            if (buf[i] === 0x2c) i = skipSpace(buf, i + 1);
            else if (buf[i] === 0x5d) {
              i++;
              break;
            } else throw new SyntaxError(`unexpected byte at ${i} of a list response`);
          }
        }
      } else {
        const end = valueEnd(buf, i);
        fields[key] = JSON.parse(buf.toString('utf8', i, end));
        i = end;
      }
      i = skipSpace(buf, i);
      if (buf[i] === 0x2c) i = skipSpace(buf, i + 1);
      else if (buf[i] === 0x7d) break;
      else throw new SyntaxError(`unexpected byte at ${i} of a list response`);
    }
    // `"items": null` (an empty list from some servers) is no items.
    if (!items && fields['items'] !== null) throw new SyntaxError('a list response has no items');
    delete fields['items'];
    return new ListPage(buf, fields, spans);
  }
}

function skipSpace(buf: Buffer, i: number): number {
  while (i < buf.length && isSpace(buf[i]!)) i++;
  return i;
}

/** The offset after the string starting at i (a quote): the next quote not escaped. */
function stringEnd(buf: Buffer, i: number): number {
  let q = i;
  for (;;) {
    q = buf.indexOf(QUOTE, q + 1);
    if (q === -1) throw new SyntaxError('unterminated string in a list response');
    let backslashes = 0;
    while (buf[q - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
  }
}

/** The offset after the JSON value starting at i. */
function valueEnd(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === QUOTE) return stringEnd(buf, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < buf.length; j++) {
      const b = buf[j]!;
      if (b === QUOTE) j = stringEnd(buf, j) - 1;
      else if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    throw new SyntaxError('unterminated object in a list response');
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < buf.length) {
    const b = buf[j]!;
    if (b === 0x2c || b === 0x7d || b === 0x5d || isSpace(b)) break;
    j++;
  }
  if (j === i) throw new SyntaxError(`unexpected byte at ${i} of a list response`);
  return j;
}
