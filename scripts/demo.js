// `npm run demo`: the main job on the embedded default, the local-directory store.
// Writes a backup through the catalogue (data first, manifest last), then lists, describes and
// verifies it with the real CLI.
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Catalogue } from '../dist/store/catalogue.js';
import { openStore, parseStoreUrl, DEFAULT_STORE } from '../dist/store/open.js';

const storeUrl = process.env.LIFEBOAT_STORE || DEFAULT_STORE;
const cat = new Catalogue(openStore(parseStoreUrl(storeUrl)));
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const lifeboat = (...args) => {
  console.log(`\n$ lifeboat ${args.join(' ')}`);
  execFileSync(process.execPath, [bin, ...args, '--store', storeUrl], { stdio: 'inherit' });
};

const payload = Buffer.from(
  JSON.stringify({ demo: true, createdAt: new Date().toISOString(), note: 'sample payload written by npm run demo' }, null, 2),
);
const writer = cat.begin('etcd', { labels: { demo: 'true' } });
await writer.put('snapshot.db', Readable.from([payload]));
const manifest = await writer.commit({ source: { cluster: 'demo', endpoint: 'none' }, details: { sample: true } });
console.log(`Wrote backup ${manifest.id} to ${cat.store.location}`);

lifeboat('backups', 'list');
lifeboat('backups', 'describe', manifest.id);
lifeboat('backups', 'verify', manifest.id);
