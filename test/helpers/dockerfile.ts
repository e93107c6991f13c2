/**
 * Replays a multi-stage Dockerfile on the local filesystem, without Docker: each stage gets a
 * directory that stands for its root filesystem, COPY copies (from the build context, honouring
 * .dockerignore, or from an earlier stage), RUN runs the shell command in the stage's WORKDIR with
 * the stage's ENV, and the last stage's USER, ENTRYPOINT and CMD are returned for running it.
 *
 * Only the instructions and forms the project's Dockerfile uses are supported; anything else
 * throws, so a Dockerfile that outgrows the replay fails the test instead of being half-replayed.
 * What it cannot reproduce is the base images themselves: commands run with this machine's node
 * and compilers.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, stat } from 'node:fs/promises';
import { basename, join, posix, relative, sep } from 'node:path';

export interface Instruction {
  keyword: string;
  /** `--name=value` options before the arguments (COPY --from=build). */
  options: Record<string, string>;
  /** The rest of the line, continuation lines joined. */
  rest: string;
  line: number;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments and line continuations handled). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let logical = lines[i]!.trim();
    if (logical === '' || logical.startsWith('#')) continue;
    while (logical.endsWith('\\') && i + 1 < lines.length) {
      logical = logical.slice(0, -1);
      const next = lines[++i]!.trim();
      if (!next.startsWith('#')) logical += ' ' + next;
    }
    const m = /^(\S+)\s*(.*)$/s.exec(logical)!;
    const keyword = m[1]!.toUpperCase();
    let rest = m[2]!.trim();
    const options: Record<string, string> = {};
    for (let o = /^--([\w-]+)=(\S+)\s+/.exec(rest); o; o = /^--([\w-]+)=(\S+)\s+/.exec(rest)) {
      options[o[1]!] = o[2]!;
      rest = rest.slice(o[0].length);
    }
    if (keyword === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!f) throw new Error(`Dockerfile line ${start}: cannot read FROM ${rest}`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${start}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, options, rest, line: start });
  }
  return stages;
}

/** `KEY=value KEY2="two words"` (the only ENV form supported). */
function parseEnv(rest: string, line: number): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/y;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) throw new Error(`Dockerfile line ${line}: unsupported ENV form: ${rest}`);
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
    pos = re.lastIndex;
    while (pos < rest.length && /\s/.test(rest[pos]!)) pos++;
  }
  return out;
}

function execForm(rest: string, line: number): string[] {
  const parsed = JSON.parse(rest) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`Dockerfile line ${line}: expected the exec (JSON array) form`);
  return parsed as string[];
}

/** Top-level .dockerignore entries (plain paths; patterns are not supported). */
async function readDockerignore(context: string): Promise<string[]> {
  const file = join(context, '.dockerignore');
  if (!existsSync(file)) return [];
  const entries = (await readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => posix.normalize(l.replace(/^\/+/, '')).replace(/\/+$/, ''));
  for (const e of entries) if (/[*?[\]!]/.test(e)) throw new Error(`.dockerignore pattern ${e} is not supported by the replay`);
  return entries;
}

export interface StageResult {
  name: string;
  /** The directory standing for this stage's root filesystem. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
}

export interface ReplayOptions {
  /** The build context (the repository). */
  context: string;
  dockerfile: string;
  /** An empty directory; each stage's root goes in a subdirectory. */
  into: string;
  /** Environment of RUN commands; the stage's ENV is added. */
  runEnv: Record<string, string>;
  /** Called with each step, e.g. `RUN npm ci (41.2s)`. */
  log?: (line: string) => void;
}

function runShell(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`RUN ${command} exited ${code ?? signal}:\n${output}`))));
  });
}

/** Replays every stage in order; returns them all, the last being the image. */
export async function replayDockerfile(opts: ReplayOptions): Promise<StageResult[]> {
  const stages = parseDockerfile(await readFile(opts.dockerfile, 'utf8'));
  const ignored = await readDockerignore(opts.context);
  const done: StageResult[] = [];
  const inStage = (s: StageResult, path: string) => join(s.root, path);

  for (const [index, stage] of stages.entries()) {
    if (stages.slice(0, index).some((s) => s.name === stage.from)) throw new Error(`FROM ${stage.from}: stages built on earlier stages are not supported by the replay`);
    const s: StageResult = { name: stage.name ?? String(index), root: join(opts.into, `stage-${stage.name ?? index}`), workdir: '/', env: {} };
    await mkdir(s.root, { recursive: true });
    for (const ins of stage.instructions) {
      const where = `Dockerfile line ${ins.line}`;
      const unsupportedOptions = Object.keys(ins.options).filter((o) => !(ins.keyword === 'COPY' && o === 'from'));
      if (unsupportedOptions.length > 0) throw new Error(`${where}: ${ins.keyword} --${unsupportedOptions.join(', --')} is not supported by the replay`);
      const t0 = Date.now();
      switch (ins.keyword) {
        case 'WORKDIR':
          s.workdir = posix.resolve(s.workdir, ins.rest);
          await mkdir(inStage(s, s.workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(s.env, parseEnv(ins.rest, ins.line));
          break;
        case 'USER':
          s.user = ins.rest;
          break;
        case 'ENTRYPOINT':
          s.entrypoint = execForm(ins.rest, ins.line);
          break;
        case 'CMD':
          s.cmd = execForm(ins.rest, ins.line);
          break;
        case 'RUN':
          if (ins.rest.startsWith('[')) throw new Error(`${where}: RUN in exec form is not supported by the replay`);
          await runShell(ins.rest, inStage(s, s.workdir), { ...opts.runEnv, ...s.env });
          break;
        case 'COPY': {
          const args = ins.rest.startsWith('[') ? execForm(ins.rest, ins.line) : ins.rest.split(/\s+/);
          if (args.length < 2) throw new Error(`${where}: COPY needs a source and a destination`);
          const sources = args.slice(0, -1);
          const destArg = args.at(-1)!;
          const dest = posix.resolve(s.workdir, destArg);
          const destIsDir = destArg.endsWith('/') || sources.length > 1;
          const from = ins.options['from'];
          const fromStage = from === undefined ? undefined : done.find((d) => d.name === from);
          if (from !== undefined && !fromStage) throw new Error(`${where}: COPY --from=${from}: no such earlier stage`);
          for (const src of sources) {
            if (/[*?[\]]/.test(src)) throw new Error(`${where}: COPY patterns (${src}) are not supported by the replay`);
            let hostSrc: string;
            if (fromStage) {
              hostSrc = inStage(fromStage, posix.resolve(fromStage.workdir, src));
            } else {
              const rel = posix.normalize(src.replace(/^\/+/, '')).replace(/\/+$/, '');
              if (rel.startsWith('..')) throw new Error(`${where}: ${src} is outside the build context`);
              if (ignored.some((i) => rel === i || rel.startsWith(`${i}/`))) throw new Error(`${where}: ${src} is excluded by .dockerignore`);
              hostSrc = join(opts.context, rel);
            }
            const isDir = (await stat(hostSrc)).isDirectory();
            const target = inStage(s, isDir || !destIsDir ? dest : posix.join(dest, basename(src)));
            const filter = (path: string) => {
              if (fromStage) return true;
              const rel = relative(opts.context, path).split(sep).join('/');
              return !ignored.some((i) => rel === i || rel.startsWith(`${i}/`));
            };
            // Symlinks (node_modules/.bin) are copied as they are, as COPY does, not re-pointed at the source.
            await cp(hostSrc, target, { recursive: true, verbatimSymlinks: true, errorOnExist: false, force: true, filter });
          }
          break;
        }
        default:
          throw new Error(`${where}: ${ins.keyword} is not supported by the replay`);
      }
      opts.log?.(`[${s.name}] ${ins.keyword} ${ins.rest}${ins.keyword === 'RUN' ? ` (${((Date.now() - t0) / 1000).toFixed(1)}s)` : ''}`);
    }
    done.push(s);
  }
  return done;
}
