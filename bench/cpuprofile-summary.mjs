#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package,
// and inclusive time for functions matching --focus.
//
//   node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top 30] [--focus regex]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, focus: { type: 'string' } },
});
for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample weights: timeDeltas[i] is the time before sample i.
  const self = new Map();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const where = (n) => {
    const u = n.callFrame.url || '';
    const m = u.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    if (m) return m[1];
    if (u.startsWith('node:')) return u;
    if (u.includes('/dist/')) return 'lifeboat:' + u.slice(u.indexOf('/dist/') + 6);
    return u ? u.replace(/^file:\/\//, '') : `(${n.callFrame.functionName || 'native'})`;
  };
  const fnKey = (n) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}:${n.callFrame.lineNumber + 1}`;
  const agg = (keyOf) => {
    const m = new Map();
    for (const [id, t] of self) {
      const k = keyOf(byId.get(id));
      m.set(k, (m.get(k) ?? 0) + t);
    }
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  const ms = (us) => (us / 1000).toFixed(0).padStart(7) + ' ms';
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
  console.log(`\n== ${file}: ${(total / 1e6).toFixed(2)} s sampled (${(p.endTime - p.startTime) / 1e6} s wall)`);
  console.log('\n-- self time by package/module');
  for (const [k, t] of agg(where).slice(0, Number(opt.top))) console.log(`${ms(t)} ${pct(t)}  ${k}`);
  console.log('\n-- self time by function');
  for (const [k, t] of agg(fnKey).slice(0, Number(opt.top))) console.log(`${ms(t)} ${pct(t)}  ${k}`);
  if (opt.focus) {
    // Inclusive time: a sample counts for every distinct matching frame on its stack.
    const re = new RegExp(opt.focus);
    const incl = new Map();
    for (const [id, t] of self) {
      const seen = new Set();
      for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
        const k = fnKey(byId.get(cur));
        if (re.test(k) && !seen.has(k)) {
          seen.add(k);
          incl.set(k, (incl.get(k) ?? 0) + t);
        }
      }
    }
    console.log(`\n-- inclusive time of functions matching /${opt.focus}/`);
    for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, Number(opt.top))) console.log(`${ms(t)} ${pct(t)}  ${k}`);
  }
}
