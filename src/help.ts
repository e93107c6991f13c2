import { Help, type Interfaces } from '@oclif/core';

/**
 * Root help lists every topic declared in package.json, including those whose commands have not
 * shipped yet, so `lifeboat --help` shows the whole shape of the tool.
 */
export default class LifeboatHelp extends Help {
  protected override get sortedTopics(): Interfaces.Topic[] {
    const declared = (this.config.pjson.oclif.topics ?? {}) as Record<string, { description?: string }>;
    const known = new Map(super.sortedTopics.map((t) => [t.name, t]));
    for (const [name, t] of Object.entries(declared)) {
      if (!known.has(name)) known.set(name, { name, description: `${t.description ?? ''} (coming soon)`, hidden: false });
    }
    return [...known.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}
