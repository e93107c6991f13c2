import { Command, Flags, type Interfaces } from '@oclif/core';
import { setMaxListeners } from 'node:events';
import { withEnv } from './env.js';
import { ExitCode, InterruptedError, isLifeboatError, messageOf } from './errors.js';
import { KubeApiError } from '../kube/errors.js';
import { createLogger, type Logger } from './log.js';
import { createPrinter, OUTPUT_FORMATS, type OutputFormat, type Printer } from './output.js';

export type FlagsOf<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
export type ArgsOf<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Every lifeboat command: --output, --debug, env for every flag, one place that turns errors into
 * a sentence and an exit code, and an AbortSignal fired by SIGINT/SIGTERM.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = withEnv({
    output: Flags.option({
      char: 'o',
      options: OUTPUT_FORMATS,
      default: 'table' as const,
      summary: 'Output format: table for people, json or yaml for scripts (the typed result).',
      helpGroup: 'GLOBAL',
    })(),
    debug: Flags.boolean({ summary: 'Print debug logs, and stack traces of internal errors.', helpGroup: 'GLOBAL' }),
  });

  protected flags!: FlagsOf<T>;
  protected args!: ArgsOf<T>;
  /** All positional arguments (for commands with strict = false that take many). */
  protected positional: string[] = [];
  protected printer!: Printer;
  protected logger!: Logger;
  private readonly abort = new AbortController();
  private signalCount = 0;

  /** Fires on SIGINT/SIGTERM; long operations stop, clean up and throw. */
  protected get signal(): AbortSignal {
    return this.abort.signal;
  }

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags, argv } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: false,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as FlagsOf<T>;
    this.args = args as ArgsOf<T>;
    this.positional = argv.map(String);
    this.printer = createPrinter(this.flags.output as OutputFormat);
    this.logger = createLogger({ debug: this.flags.debug });
    // Every request in flight listens to the signal, and --concurrency allows up to 64 of them:
    // no "possible memory leak" warning for that.
    setMaxListeners(0, this.abort.signal);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.signalCount++;
    if (this.signalCount > 1) {
      process.stderr.write(`Second ${sig}: exiting now without cleanup.\n`);
      process.exit(ExitCode.Interrupted);
    }
    process.stderr.write(`${sig} received: stopping and cleaning up (again to force).\n`);
    this.abort.abort(new InterruptedError());
  };

  protected override async finally(err: Error | undefined): Promise<unknown> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    return super.finally(err);
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    const debug = this.flags?.debug ?? process.argv.includes('--debug');
    let code: number = ExitCode.Failure;
    if (this.abort.signal.aborted && !isLifeboatError(err)) {
      code = ExitCode.Interrupted;
      process.stderr.write('Interrupted; cleanup done.\n');
    } else if (isLifeboatError(err)) {
      code = err.exitCode;
      process.stderr.write(`Error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`  ${err.hint}\n`);
      if (debug && err.cause) process.stderr.write(`${stackOf(err.cause)}\n`);
    } else if (err instanceof KubeApiError) {
      // An API answer nobody turned into a sentence: still the API server's own words, not a bug.
      code = err.status === 404 ? ExitCode.NotFound : ExitCode.Failure;
      process.stderr.write(`Error: ${err.message} (HTTP ${err.status} ${err.reason})\n`);
      if (err.status === 401 || err.status === 403) process.stderr.write('  Check the credentials of --kubeconfig/--context and their RBAC permissions.\n');
      if (debug) process.stderr.write(`${stackOf(err)}\n`);
    } else if (oclifExit(err) !== undefined) {
      // oclif's own parse errors: bad flags, missing arguments.
      code = oclifExit(err) === 0 ? 0 : ExitCode.Usage;
      if (code !== 0) {
        process.stderr.write(`Error: ${messageOf(err)}\n`);
        if (debug) process.stderr.write(`${stackOf(err)}\n`);
      }
    } else {
      process.stderr.write(`Internal error: ${messageOf(err)}\n`);
      process.stderr.write(debug ? `${stackOf(err)}\n` : '  This is a bug in lifeboat; run again with --debug for details and report it.\n');
    }
    process.exitCode = code;
    return undefined;
  }
}

function oclifExit(err: unknown): number | undefined {
  const exit = (err as { oclif?: { exit?: unknown } } | undefined)?.oclif?.exit;
  return typeof exit === 'number' ? exit : undefined;
}

function stackOf(err: unknown): string {
  return err instanceof Error && err.stack ? err.stack : String(err);
}
