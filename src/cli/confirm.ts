import { createInterface } from 'node:readline/promises';
import { UsageError } from './errors.js';

/**
 * Asks before a destructive step. --yes answers for the user; without a terminal on stdin there is
 * nobody to ask, so the step is refused (exit 2) rather than taken.
 */
export async function confirm(question: string, opts: { yes: boolean; what: string }): Promise<boolean> {
  if (opts.yes) return true;
  if (!process.stdin.isTTY) {
    throw new UsageError(`Refusing to ${opts.what} without --yes: stdin is not a terminal, so nobody can confirm.`, {
      hint: 'Add --yes (or LIFEBOAT_YES=true) to confirm, or --dry-run to preview.',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
