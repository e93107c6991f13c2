/** "s3-endpoint" -> "LIFEBOAT_S3_ENDPOINT". */
export function envName(flag: string): string {
  return 'LIFEBOAT_' + flag.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** Gives every flag that has none an environment variable LIFEBOAT_<FLAG>. */
export function withEnv<T extends Record<string, object>>(flags: T): T {
  const out: Record<string, object> = {};
  for (const [name, def] of Object.entries(flags)) {
    out[name] = 'env' in def && def.env ? def : { ...def, env: envName(name) };
  }
  return out as T;
}
