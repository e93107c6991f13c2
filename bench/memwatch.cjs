// Preload (node -r bench/memwatch.cjs ...): samples process.memoryUsage() every 50 ms and, at
// exit, appends the peaks (MB) to $MEMWATCH_OUT (default /tmp/memwatch.jsonl), to see what makes
// up a process's peak RSS: V8 heap, external memory (Buffers), array buffers, the rest (code,
// native libraries, thread stacks, allocator caches).
const { appendFileSync } = require('node:fs');
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
let atPeakRss;
const sample = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]);
  if (m.rss >= peak.rss) atPeakRss = m;
};
const t = setInterval(sample, 50);
t.unref();
process.on('exit', () => {
  sample();
  const mb = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, +(v / 1048576).toFixed(1)]));
  appendFileSync(process.env.MEMWATCH_OUT || '/tmp/memwatch.jsonl', JSON.stringify({ argv: process.argv.slice(2).join(' ').slice(0, 200), peak: mb(peak), atPeakRss: mb(atPeakRss) }) + '\n');
});
