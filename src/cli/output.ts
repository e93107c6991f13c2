import { createRequire } from 'node:module';

/** yaml is loaded only when YAML is asked for. */
const yaml = () => createRequire(import.meta.url)('yaml') as typeof import('yaml');

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Prints a command's typed result: as JSON or YAML (the result itself), or as a table for people. */
export interface Printer {
  print<T>(result: T, table: (result: T) => string): void;
}

export function createPrinter(format: OutputFormat, write: (text: string) => void = (t) => process.stdout.write(t)): Printer {
  return {
    print(result, table) {
      if (format === 'json') write(JSON.stringify(result, null, 2) + '\n');
      else if (format === 'yaml') write(yaml().stringify(result, { lineWidth: 0 }));
      else {
        const text = table(result);
        if (text) write(text.endsWith('\n') ? text : text + '\n');
      }
    },
  };
}

/** Left-aligned columns separated by three spaces, kubectl style. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
