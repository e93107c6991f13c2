/**
 * Bech32 decoding (BIP 173) without its 90-character limit, as age uses it for keys: the string is
 * all lowercase or all uppercase, the checksum is computed over the lowercase form, and the data
 * part is 5-bit groups that regroup into whole bytes with zero padding.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

export class Bech32Error extends Error {}

/** Splits a Bech32 string into its human-readable part (lowercase) and its data bytes. */
export function bech32Decode(text: string): { hrp: string; data: Buffer } {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) throw new Bech32Error('mixed case');
  const s = text.toLowerCase();
  const sep = s.lastIndexOf('1');
  if (sep < 1 || s.length - sep - 1 < 6) throw new Bech32Error('no separator or data part');
  const hrp = s.slice(0, sep);
  const values: number[] = [];
  for (const c of hrp) {
    const code = c.charCodeAt(0);
    if (code < 33 || code > 126) throw new Bech32Error('invalid character');
    values.push(code >>> 5);
  }
  values.push(0);
  for (const c of hrp) values.push(c.charCodeAt(0) & 31);
  const words: number[] = [];
  for (const c of s.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) throw new Bech32Error('invalid character');
    words.push(v);
  }
  if (polymod([...values, ...words]) !== 1) throw new Bech32Error('bad checksum');
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words.slice(0, -6)) {
    acc = (acc << 5) | w;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits >= 5 || acc !== 0) throw new Bech32Error('bad padding');
  return { hrp, data: Buffer.from(out) };
}
