import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { metricsOutputsFrom, renderOpenMetrics, renderTextFormat, withRunMetrics, type RunMetrics } from '../../src/cli/metrics.js';
import { groupUrl, parsePushgateway, pushRunMetrics, TEXT_FORMAT_CONTENT_TYPE } from '../../src/cli/pushgateway.js';
import type { Logger } from '../../src/cli/log.js';

const startedAt = new Date(1_700_000_000_000);
const success: RunMetrics = { kind: 'resources', result: 'success', startedAt, durationSeconds: 12.5, bytes: 2048, objects: 42 };
const target = (url: string, job = 'lifeboat') => parsePushgateway(url, { job, timeoutMs: 2000 });

describe('renderTextFormat (what is pushed)', () => {
  it('is the text exposition format 0.0.4: HELP and TYPE, no UNIT, no EOF', () => {
    expect(renderTextFormat(success)).toBe(
      [
        '# HELP lifeboat_backup_last_success_timestamp_seconds When the last successful backup of this kind finished (Unix time).',
        '# TYPE lifeboat_backup_last_success_timestamp_seconds gauge',
        'lifeboat_backup_last_success_timestamp_seconds{kind="resources"} 1700000012.500',
        '# HELP lifeboat_backup_last_run_timestamp_seconds When the last run of this kind finished (Unix time).',
        '# TYPE lifeboat_backup_last_run_timestamp_seconds gauge',
        'lifeboat_backup_last_run_timestamp_seconds{kind="resources"} 1700000012.500',
        '# HELP lifeboat_backup_last_run_duration_seconds How long the last run took.',
        '# TYPE lifeboat_backup_last_run_duration_seconds gauge',
        'lifeboat_backup_last_run_duration_seconds{kind="resources"} 12.500',
        '# HELP lifeboat_backup_last_run_result The last run’s result: 1 for the result it had, 0 for the others.',
        '# TYPE lifeboat_backup_last_run_result gauge',
        'lifeboat_backup_last_run_result{kind="resources",result="success"} 1',
        'lifeboat_backup_last_run_result{kind="resources",result="partial"} 0',
        'lifeboat_backup_last_run_result{kind="resources",result="failure"} 0',
        '# HELP lifeboat_backup_last_run_stored_bytes Bytes the last run stored (compressed, encrypted).',
        '# TYPE lifeboat_backup_last_run_stored_bytes gauge',
        'lifeboat_backup_last_run_stored_bytes{kind="resources"} 2048',
        '# HELP lifeboat_backup_last_run_objects Objects the last run dumped.',
        '# TYPE lifeboat_backup_last_run_objects gauge',
        'lifeboat_backup_last_run_objects{kind="resources"} 42',
        '',
      ].join('\n'),
    );
  });

  it('leaves out the last success after a failed or partial run (so the stored one stays)', () => {
    for (const result of ['failure', 'partial'] as const) {
      const text = renderTextFormat({ ...success, result });
      expect(text).not.toMatch(/last_success/);
      expect(text).toContain(`lifeboat_backup_last_run_result{kind="resources",result="${result}"} 1`);
    }
  });

  it('the file keeps its OpenMetrics form and carries over the last success of each kind', () => {
    const previous = renderOpenMetrics({ kind: 'etcd', result: 'success', startedAt, durationSeconds: 3 });
    const text = renderOpenMetrics({ ...success, result: 'failure' }, previous);
    expect(text).toContain('# UNIT lifeboat_backup_last_success_timestamp_seconds seconds');
    expect(text).toContain('lifeboat_backup_last_success_timestamp_seconds{kind="etcd"} 1700000003');
    expect(text).not.toMatch(/last_success_timestamp_seconds\{kind="resources"\}/);
    expect(text.endsWith('# EOF\n')).toBe(true);
  });
});

describe('parsePushgateway', () => {
  it('takes basic auth out of the URL into a header', () => {
    const t = target('https://me:p%40ss@pg.example:9091/prefix/');
    expect(t.display).toBe('https://pg.example:9091/prefix/');
    expect(t.authorization).toBe(`Basic ${Buffer.from('me:p@ss').toString('base64')}`);
    expect(target('http://pg:9091').authorization).toBeUndefined();
  });

  it.each([
    ['pg.example:9091', /not an http or https URL/],
    ['not a url', /not a URL/],
    ['http://pg:9091/metrics/job/lifeboat', /without \/metrics/],
    ['http://pg:9091/?x=1', /no query/],
  ])('refuses %j', (raw, why) => {
    expect(() => target(raw)).toThrow(UsageError);
    expect(() => target(raw)).toThrow(why);
  });

  it('never repeats a password in its errors', () => {
    expect(() => target('ftp://me:secret@pg:21')).toThrow(/ftp:\/\/me:\*\*\*@pg:21/);
  });

  it('groups by job and kind under the base path; a job with "/" goes base64-encoded', () => {
    expect(groupUrl(target('http://pg:9091'), 'etcd').href).toBe('http://pg:9091/metrics/job/lifeboat/kind/etcd');
    expect(groupUrl(target('http://pg:9091/gw/'), 'etcd').href).toBe('http://pg:9091/gw/metrics/job/lifeboat/kind/etcd');
    expect(groupUrl(target('http://pg:9091', 'prod/eu'), 'resources').href).toBe(
      `http://pg:9091/metrics/job@base64/${Buffer.from('prod/eu').toString('base64url')}/kind/resources`,
    );
    expect(groupUrl(target('http://pg:9091', 'a b'), 'etcd').pathname).toBe('/metrics/job/a%20b/kind/etcd');
  });

  it('reads the timeout as a duration', () => {
    const out = metricsOutputsFrom({ pushgateway: 'http://pg:9091', 'pushgateway-job': 'lifeboat', 'pushgateway-timeout': '1m30s' }, silent());
    expect(out.push?.timeoutMs).toBe(90_000);
    expect(() => metricsOutputsFrom({ pushgateway: 'http://pg:9091', 'pushgateway-job': 'lifeboat', 'pushgateway-timeout': 'soon' }, silent())).toThrow(/--pushgateway-timeout/);
  });
});

function silent(lines: string[] = []): Logger {
  const log = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

describe('pushing', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** A stand-in that records requests and answers with the given status. */
  async function gateway(status: number, body = '', headers: Record<string, string> = {}) {
    const requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text });
        res.writeHead(status, headers).end(body);
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
  }

  it('POSTs the text format with its content type and the basic-auth header', async () => {
    const gw = await gateway(200);
    await pushRunMetrics(target(gw.url.replace('http://', 'http://u:pw@')), 'etcd', 'x 1\n');
    expect(gw.requests).toEqual([
      expect.objectContaining({ method: 'POST', url: '/metrics/job/lifeboat/kind/etcd', body: 'x 1\n' }),
    ]);
    expect(gw.requests[0]!.headers['content-type']).toBe(TEXT_FORMAT_CONTENT_TYPE);
    expect(gw.requests[0]!.headers['authorization']).toBe(`Basic ${Buffer.from('u:pw').toString('base64')}`);
  });

  it('says what the Pushgateway answered to a refused push, and does not follow redirects', async () => {
    const bad = await gateway(400, 'pushed metrics are invalid or inconsistent with existing metrics: …');
    await expect(pushRunMetrics(target(bad.url), 'etcd', 'x 1\n')).rejects.toThrow(/HTTP 400 Bad Request: pushed metrics are invalid/);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    const moved = await gateway(308, '', { location: 'https://pg.example/' });
    await expect(pushRunMetrics(target(moved.url), 'etcd', 'x 1\n')).rejects.toThrow(/HTTP 308 .*redirect to https:\/\/pg.example\/; give that URL/);
  });

  it('a failed push is a warning and the run’s result stands; a failed run pushes 0 bytes and objects', async () => {
    const gw = await gateway(500, 'boom');
    const lines: string[] = [];
    const out = { push: target(gw.url), logger: silent(lines) };
    const result = await withRunMetrics(out, 'resources', async () => 'done', () => ({ bytes: 5, objects: 1 }));
    expect(result).toBe('done');
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([expect.stringMatching(/Could not push metrics .*HTTP 500 Internal Server Error: boom/)]);

    await expect(withRunMetrics(out, 'resources', () => Promise.reject(new Error('dump failed')), () => ({}))).rejects.toThrow('dump failed');
    const failedPush = gw.requests[1]!.body;
    expect(failedPush).toContain('lifeboat_backup_last_run_result{kind="resources",result="failure"} 1');
    expect(failedPush).toContain('lifeboat_backup_last_run_stored_bytes{kind="resources"} 0');
    expect(failedPush).toContain('lifeboat_backup_last_run_objects{kind="resources"} 0');
    expect(failedPush).not.toContain('last_success');
  });
});
