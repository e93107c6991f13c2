/**
 * Exit codes and the error classes that carry them.
 *
 * A LifeboatError is a user-facing failure: its message is one clear sentence, `hint` says what to
 * try, and the CLI prints both without a stack. Anything else that escapes a command is a bug and
 * is printed with its stack only under --debug.
 */
export const ExitCode = {
  Success: 0,
  Failure: 1,
  Usage: 2,
  Partial: 3,
  NotFound: 4,
  Integrity: 5,
  Unsafe: 6,
  Blocked: 7,
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class LifeboatError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.Failure;
    this.hint = opts.hint;
  }
}

type Opts = { hint?: string; cause?: unknown };

export class UsageError extends LifeboatError {
  constructor(message: string, opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.Usage });
  }
}

export class NotFoundError extends LifeboatError {
  constructor(message: string, opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.NotFound });
  }
}

export class IntegrityError extends LifeboatError {
  constructor(message: string, opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.Integrity });
  }
}

export class UnsafeTargetError extends LifeboatError {
  constructor(message: string, opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.Unsafe });
  }
}

export class BlockedError extends LifeboatError {
  constructor(message: string, opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.Blocked });
  }
}

export class InterruptedError extends LifeboatError {
  constructor(message = 'Interrupted; cleanup done.', opts: Opts = {}) {
    super(message, { ...opts, exitCode: ExitCode.Interrupted });
  }
}

export function isLifeboatError(err: unknown): err is LifeboatError {
  return err instanceof LifeboatError;
}

/** Message of any thrown value, without a stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
