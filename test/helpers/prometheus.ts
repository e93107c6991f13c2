import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export type Sample = [string, Record<string, string>, number];

/**
 * Parses exposition text with prometheus_client's own parser (Debian's python3-prometheus-client,
 * installed by the rig): `openmetrics` with the strict OpenMetrics parser, `text` with the
 * Prometheus text format 0.0.4 parser. Resolves with [name, labels, value] per sample; a parse
 * error rejects.
 */
export async function parseExposition(text: string, format: 'openmetrics' | 'text'): Promise<Sample[]> {
  const module = format === 'openmetrics' ? 'prometheus_client.openmetrics.parser' : 'prometheus_client.parser';
  const script = `
import json, sys
from ${module} import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
`;
  const child = execFileP('/usr/bin/python3', ['-c', script]);
  child.child.stdin?.end(text);
  return JSON.parse((await child).stdout) as Sample[];
}
