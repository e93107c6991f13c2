/**
 * What upgrades a node, behind one interface:
 *   command   a local command (e.g. ssh ... kubeadm upgrade node ...): {node} and {version} are
 *             substituted inside the arguments after they are split, so a node name is never
 *             parsed by a shell; --shell runs the text with sh -c, the values shell-quoted;
 *   job       a Job pinned to the node (job.ts);
 *   external  nothing: someone else brings the node to the target (an image rollout, a node
 *             replacement); the run only waits for it.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { parse as parseShell, quote as quoteShell } from 'shell-quote';
import { LifeboatError, UsageError } from '../cli/errors.js';

export type ActionSpec =
  | { kind: 'command'; argv: string[]; timeoutMs: number }
  | { kind: 'shell'; script: string; timeoutMs: number }
  | { kind: 'job'; image: string; command?: string[] | undefined; namespace: string; privileged: boolean; hostPID: boolean; timeoutMs: number }
  | { kind: 'external' };

export interface ActionContext {
  node: string;
  version: string;
  /** The run and the node's attempt: a Job's name is made from them. */
  runId?: string;
  attempt?: number;
  signal?: AbortSignal | undefined;
  /** Called with the pid of a local process once it started. */
  onStart?: ((pid: number) => void) | undefined;
  /** One line of the action's output (or of its pod's state). */
  output?: ((line: string) => void) | undefined;
}

export interface NodeAction {
  readonly spec: ActionSpec;
  /** Human summary for logs and the journal. */
  describe(): string;
  /** Throws ActionError when the action failed; its message says how. */
  run(ctx: ActionContext): Promise<void>;
}

export class ActionError extends LifeboatError {}

/** Splits an action's text into arguments, refusing what only a shell could mean. */
export function splitCommand(text: string, what = '--action'): string[] {
  const parts = parseShell(text, (key) => `$${key}`);
  const argv: string[] = [];
  for (const p of parts) {
    if (typeof p === 'string') argv.push(p);
    else if ('pattern' in p) argv.push(p.pattern);
    else {
      const op = 'op' in p ? p.op : 'comment';
      throw new UsageError(`${what} ${JSON.stringify(text)} uses the shell operator ${JSON.stringify(op)}, and is not run by a shell.`, {
        hint: 'Add --shell to run it with sh -c, or put the steps in a script and give its path.',
      });
    }
  }
  if (argv.length === 0) throw new UsageError(`${what} is empty.`);
  return argv;
}

/** {node} and {version} inside every argument; the values never become separate arguments. */
export function substitute(argv: string[], vars: { node: string; version: string }): string[] {
  return argv.map((a) => a.replaceAll('{node}', vars.node).replaceAll('{version}', vars.version));
}

/** The script for sh -c, with the values shell-quoted wherever they appear. */
export function substituteShell(script: string, vars: { node: string; version: string }): string {
  return script.replaceAll('{node}', quoteShell([vars.node])).replaceAll('{version}', quoteShell([vars.version]));
}

/** The executable a command would run, or a UsageError saying why it cannot (exit 2 before anything changes). */
export async function resolveExecutable(file: string, what = '--action'): Promise<string> {
  const candidates = file.includes('/') ? [isAbsolute(file) ? file : join(process.cwd(), file)] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, file));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new UsageError(
    file.includes('/') ? `${what}: ${file} does not exist or is not executable.` : `${what}: ${file} is not an executable on PATH.`,
    { hint: 'Give the full path of an executable file (chmod +x), or check PATH.' },
  );
}

const TAIL_LINES = 20;

/** Runs argv, streaming its output lines; resolves on exit 0, else throws ActionError with the last lines. */
export function runProcess(argv: string[], ctx: ActionContext & { timeoutMs: number; what: string; env?: Record<string, string> }): Promise<void> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv as [string, ...string[]];
    // Its own process group, so a timeout or an interrupt stops the children of a script too.
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...ctx.env }, detached: true });
    if (child.pid) ctx.onStart?.(child.pid);
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    const tail: string[] = [];
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      ctx.output?.(line);
    };
    for (const s of [child.stdout, child.stderr]) {
      let rest = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) onLine(l);
      });
      s.on('end', () => {
        if (rest) onLine(rest);
      });
    }
    let killedFor: string | undefined;
    const kill = (why: string) => {
      if (killedFor) return;
      killedFor = why;
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), 10_000).unref();
    };
    const timer = ctx.timeoutMs > 0 ? setTimeout(() => kill(`timed out after ${Math.round(ctx.timeoutMs / 1000)}s`), ctx.timeoutMs) : undefined;
    const onAbort = () => kill('interrupted');
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      reject(new ActionError(`${ctx.what} could not start ${file}: ${err.message}.`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      if (code === 0 && !killedFor) return resolve();
      const how = killedFor ?? (sig ? `was killed by ${sig}` : `exited with code ${code}`);
      const last = tail.filter((l) => l.trim()).slice(-5);
      reject(new ActionError(`${ctx.what} for node ${ctx.node} ${how}${last.length ? `; last output: ${last.join(' | ')}` : ''}.`));
    });
  });
}

export class CommandAction implements NodeAction {
  constructor(readonly spec: Extract<ActionSpec, { kind: 'command' | 'shell' }>) {}

  describe(): string {
    return this.spec.kind === 'shell' ? `sh -c ${JSON.stringify(this.spec.script)}` : quoteShell(this.spec.argv);
  }

  /** Checks that the command can run at all (before the first node is touched). */
  async check(): Promise<void> {
    if (this.spec.kind === 'shell') await resolveExecutable('/bin/sh', '--shell');
    else await resolveExecutable(this.spec.argv[0] as string);
  }

  run(ctx: ActionContext): Promise<void> {
    const vars = { node: ctx.node, version: ctx.version };
    const argv = this.spec.kind === 'shell' ? ['/bin/sh', '-c', substituteShell(this.spec.script, vars)] : substitute(this.spec.argv, vars);
    return runProcess(argv, { ...ctx, timeoutMs: this.spec.timeoutMs, what: 'The action', env: { LIFEBOAT_NODE: ctx.node, LIFEBOAT_VERSION: ctx.version } });
  }
}

export class ExternalAction implements NodeAction {
  readonly spec = { kind: 'external' } as const;

  describe(): string {
    return 'wait for the node to be upgraded by other means';
  }

  async run(): Promise<void> {
    // The wait for the target version that follows every action is the whole of it.
  }
}

/** A gate command: same substitution and no shell, exit 0 passes. */
export function runGateCommand(argv: string[], ctx: ActionContext & { timeoutMs: number }): Promise<void> {
  return runProcess(substitute(argv, { node: ctx.node, version: ctx.version }), { ...ctx, what: 'The gate command', env: { LIFEBOAT_NODE: ctx.node, LIFEBOAT_VERSION: ctx.version } });
}
