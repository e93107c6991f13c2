export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Logs to stderr: plain lines on a terminal, JSON lines otherwise (CronJobs, CI, log collectors).
 * stdout is kept for results only.
 */
export function createLogger(opts: { debug?: boolean; json?: boolean; write?: (line: string) => void } = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (level === 'debug' && !opts.debug) return;
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
    } else {
      const extra = fields && Object.keys(fields).length ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
      const prefix = level === 'info' ? '' : `${level === 'warn' ? 'warning' : level}: `;
      write(`${prefix}${msg}${extra}\n`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
