import { Flags } from '@oclif/core';
import { withEnv } from './env.js';

const count = (summary: string) => Flags.integer({ min: 1, summary, helpGroup: 'RETENTION' });

/** The retention rules of `backups prune`, also taken by `schedule manifest` for its prune step. */
export const retentionFlags = withEnv({
  'keep-last': count('Keep the N newest backups.'),
  'keep-hourly': count('Keep the newest backup of each of the last N hours.'),
  'keep-daily': count('Keep the newest backup of each of the last N days.'),
  'keep-weekly': count('Keep the newest backup of each of the last N ISO weeks.'),
  'keep-monthly': count('Keep the newest backup of each of the last N months.'),
  'keep-yearly': count('Keep the newest backup of each of the last N years.'),
  'keep-within': Flags.string({ summary: "Keep every backup within this duration of the group's newest (e.g. 7d).", helpGroup: 'RETENTION' }),
});
