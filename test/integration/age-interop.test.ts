import { execFile, spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptor, encryptor, type DecryptionConfig, type EncryptionConfig } from '../../src/snapshot/pipeline/encryption.js';
import { patternBytes } from '../helpers/streams.js';

const run = promisify(execFile);

// The payload's edge cases: empty, one byte, a chunk less one byte, exactly one chunk (its only and
// final chunk is full), one byte into a second chunk, and several MiB ending mid-chunk.
const SIZES = [0, 1, 65535, 65536, 65537, 5 * 1024 * 1024 + 123];
const PASSPHRASE = 'lifeboat interop passphrase';

/**
 * Runs `age` with a passphrase: age reads passphrases only from a terminal, so it runs under
 * script(1)'s pseudo-terminal and each prompt is answered as it appears.
 */
function ageWithPassphrase(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const cmd = ['age', ...args].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let answered = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const prompts = out.match(/passphrase[^:\n]*:/gi)?.length ?? 0;
      for (; answered < prompts; answered++) child.stdin.write(`${PASSPHRASE}\n`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      if (code === 0) resolve();
      else reject(new Error(`age ${args.join(' ')} exited ${code}: ${out}`));
    });
  });
}

/** age creates its -o file at the first byte it writes: no file is an empty plaintext. */
async function readOutput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
}

describe('age interoperability (Debian age 1.1.1)', () => {
  let dir: string;
  let idFile: string;
  let recipient: string;
  let identity: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-age-'));
    idFile = join(dir, 'key.txt');
    await run('age-keygen', ['-o', idFile]);
    recipient = (await run('age-keygen', ['-y', idFile])).stdout.trim();
    identity = (await readFile(idFile, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const file = (name: string) => join(dir, name);
  const ours = (cfg: EncryptionConfig, from: string, to: string) => pipeline(createReadStream(from, { highWaterMark: 40_000 }), encryptor(cfg), createWriteStream(to));
  const oursOpen = (cfg: DecryptionConfig, from: string, to: string) => pipeline(createReadStream(from, { highWaterMark: 40_000 }), decryptor(cfg), createWriteStream(to));
  const plainFile = async (size: number) => {
    const data = patternBytes(size, size + 7);
    const path = file(`plain-${size}`);
    await writeFile(path, data);
    return { data, path };
  };

  it.each(SIZES)('`age -d -i` opens what lifeboat encrypts to a recipient (%i bytes)', async (size) => {
    const { data, path } = await plainFile(size);
    await ours({ recipients: [recipient] }, path, file(`ours-${size}.age`));
    const { stdout } = await run('age', ['-d', '-i', idFile, file(`ours-${size}.age`)], { encoding: 'buffer', maxBuffer: 64 << 20 });
    expect(stdout.equals(data)).toBe(true);
  });

  it.each(SIZES)('lifeboat opens what `age -e -r` encrypts (%i bytes)', async (size) => {
    const { data, path } = await plainFile(size);
    await run('age', ['-e', '-r', recipient, '-o', file(`theirs-${size}.age`), path]);
    await oursOpen({ identities: [identity] }, file(`theirs-${size}.age`), file(`theirs-${size}.out`));
    expect((await readFile(file(`theirs-${size}.out`))).equals(data)).toBe(true);
  });

  it.each(SIZES)('`age -d` opens what lifeboat encrypts with a passphrase (%i bytes)', async (size) => {
    const { data, path } = await plainFile(size);
    await ours({ passphrase: PASSPHRASE }, path, file(`ours-p-${size}.age`));
    expect((await readFile(file(`ours-p-${size}.age`))).subarray(0, 40).toString()).toMatch(/^age-encryption\.org\/v1\n-> scrypt /);
    await ageWithPassphrase(['-d', '-o', file(`ours-p-${size}.out`), file(`ours-p-${size}.age`)]);
    expect((await readOutput(file(`ours-p-${size}.out`))).equals(data)).toBe(true);
  });

  it.each(SIZES)('lifeboat opens what `age -p` encrypts (%i bytes)', async (size) => {
    const { data, path } = await plainFile(size);
    await ageWithPassphrase(['-p', '-o', file(`theirs-p-${size}.age`), path]);
    await oursOpen({ identities: [], passphrase: PASSPHRASE }, file(`theirs-p-${size}.age`), file(`theirs-p-${size}.out`));
    expect((await readFile(file(`theirs-p-${size}.out`))).equals(data)).toBe(true);
  });

  it('a file encrypted to two recipients opens with either identity in `age -d`', async () => {
    const other = file('other.txt');
    await run('age-keygen', ['-o', other]);
    const otherRecipient = (await run('age-keygen', ['-y', other])).stdout.trim();
    const { data, path } = await plainFile(200_000);
    await ours({ recipients: [recipient, otherRecipient] }, path, file('two.age'));
    for (const id of [idFile, other]) {
      await run('age', ['-d', '-i', id, '-o', file('two.out'), file('two.age')]);
      expect((await readFile(file('two.out'))).equals(data)).toBe(true);
    }
  });

  it('`age -d` refuses a lifeboat file with one payload byte changed', async () => {
    const { path } = await plainFile(100_000);
    await ours({ recipients: [recipient] }, path, file('bad.age'));
    const bytes = await readFile(file('bad.age'));
    bytes[bytes.length - 70_000]! ^= 0x20;
    await writeFile(file('bad.age'), bytes);
    await expect(run('age', ['-d', '-i', idFile, '-o', file('bad.out'), file('bad.age')])).rejects.toThrow(/failed|decrypt|authenticat/i);
  });
});
