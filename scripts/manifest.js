// Writes oclif.manifest.json (every command's id, flags and args) so the CLI starts without
// importing every command module. Run by `npm run build` after tsc.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = fileURLToPath(new URL('..', import.meta.url));
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), JSON.stringify(plugin.manifest, null, 2) + '\n');
console.error(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`);
