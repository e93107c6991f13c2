import { LifeboatError, NotFoundError } from '../cli/errors.js';

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

function fields(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? (err as AwsLikeError) : {};
}

export function nameOf(err: unknown): string {
  const e = fields(err);
  return e.name ?? e.Code ?? '';
}

export function isNotFound(err: unknown): boolean {
  const e = fields(err);
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket');
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/** Turns an S3 SDK error into one clear sentence with a hint; unknown errors keep their message. */
export function describeS3Error(
  err: unknown,
  ctx: { action: string; bucket: string; key?: string | undefined; endpoint?: string | undefined },
): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const e = fields(err);
  const where = ctx.endpoint ? ` at ${ctx.endpoint}` : '';
  const target = ctx.key ? `${ctx.key} in bucket ${ctx.bucket}` : `bucket ${ctx.bucket}`;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.Code ?? '';
  if (name === 'NoSuchBucket') {
    return new NotFoundError(`Bucket ${ctx.bucket} does not exist${where}.`, {
      cause: err,
      hint: 'Create the bucket first, or check the store URL and --s3-endpoint.',
    });
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'].includes(name)) {
    return new LifeboatError(`The S3 credentials were rejected${where} (${name}).`, {
      cause: err,
      hint: 'Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile in use.',
    });
  }
  if (status === 403 && fields(err).Code === undefined) {
    // HEAD responses carry no error body, so the service cannot say which of the two it was.
    return new LifeboatError(`Access denied or credentials rejected trying to ${ctx.action} ${target}${where}.`, {
      cause: err,
      hint: 'Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS profile), and that they may use this bucket.',
    });
  }
  if (name === 'AccessDenied' || status === 403) {
    return new LifeboatError(`Access denied trying to ${ctx.action} ${target}${where}.`, {
      cause: err,
      hint: 'The credentials in use lack permission for this bucket or prefix.',
    });
  }
  if (name === 'CredentialsProviderError') {
    return new LifeboatError('No AWS credentials were found for the S3 store.', {
      cause: err,
      hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance role is available.',
    });
  }
  const code = e.code ?? '';
  if (NETWORK_CODES.has(code) || name === 'TimeoutError') {
    return new LifeboatError(`Cannot reach the S3 endpoint${where || ` for bucket ${ctx.bucket}`} to ${ctx.action} ${target}: ${code || name}.`, {
      cause: err,
      hint: 'Check --s3-endpoint, the network, and that the service is up.',
    });
  }
  const detail = [name, status ? `HTTP ${status}` : ''].filter(Boolean).join(', ');
  return new LifeboatError(`S3 failed to ${ctx.action} ${target}${where}: ${e.message ?? String(err)}${detail ? ` (${detail})` : ''}.`, {
    cause: err,
  });
}
