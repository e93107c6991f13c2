import { LifeboatError } from '../cli/errors.js';
import { abortable, describeEtcdError, transportFor, type EtcdConnection, type MemberStatus, type Transport } from './connection.js';
import { openSession, unaryCall } from './h2.js';
import { bytes, decodeFields, encodeStrings, uint } from './proto.js';

export interface AnsweringMember {
  status: MemberStatus;
  transport: Transport;
  /** etcd's auth token for the user, when etcd has auth enabled and a user was given. */
  token: string | undefined;
}

/**
 * Like firstHealthy, without the etcd3 client: tries the endpoints in order, authenticates (when
 * a user is given) and calls Status over node:http2, and returns the first member that answers,
 * with how to reach it and the token for further calls. Fails with one sentence listing why each
 * endpoint failed.
 */
export async function firstAnswering(conn: EtcdConnection, signal?: AbortSignal): Promise<AnsweringMember> {
  const failures: string[] = [];
  // As the etcd3 client does: the dial timeout, plus a few seconds for the call itself.
  const timeoutMs = conn.dialTimeoutMs + 3000;
  for (const endpoint of conn.endpoints) {
    if (signal?.aborted) throw signal.reason;
    const transport = await transportFor(conn, endpoint);
    const session = openSession(transport);
    // Connection errors fail the call in progress (unaryCall listens); this keeps later ones quiet.
    session.on('error', () => undefined);
    try {
      const ask = async () => {
        const token = conn.user ? await authenticate(session, conn.user, conn.password ?? '', timeoutMs) : undefined;
        const res = decodeFields(await unaryCall(session, '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), { token, timeoutMs }));
        const header = decodeFields(bytes(res, 1));
        const status: MemberStatus = {
          endpoint,
          version: bytes(res, 2).toString('utf8'),
          dbSize: Number(uint(res, 3)),
          revision: Number(uint(header, 3)),
          memberId: uint(header, 2).toString(16),
          clusterId: uint(header, 1).toString(16),
          leader: uint(res, 4).toString(16),
          raftIndex: uint(res, 5).toString(),
        };
        return { status, token };
      };
      return { ...(await abortable(ask(), signal)), transport };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      failures.push(`${endpoint}: ${describeEtcdError(err)}`);
    } finally {
      session.destroy();
    }
  }
  throw new LifeboatError(`No etcd endpoint answered: ${failures.join('; ')}.`, {
    hint: 'Check --endpoints, the TLS files (--cacert --cert --key) and that etcd is running.',
  });
}

/** Auth.Authenticate; etcd without auth enabled needs no token (as etcd's own client treats it). */
async function authenticate(session: Parameters<typeof unaryCall>[0], name: string, password: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = decodeFields(await unaryCall(session, '/etcdserverpb.Auth/Authenticate', encodeStrings([[1, name], [2, password]]), { timeoutMs }));
    return bytes(res, 2).toString('utf8') || undefined;
  } catch (err) {
    if (err instanceof Error && /authentication is not enabled/.test(err.message)) return undefined;
    throw err;
  }
}
