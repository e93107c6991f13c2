import { UsageError } from '../cli/errors.js';
import type { LabelSelector, LabelSelectorRequirement } from '../drain/types.js';

/**
 * Parses kubectl's label selector syntax into the API's structured form:
 * `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not exist),
 * requirements separated by commas.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const expressions: LabelSelectorRequirement[] = [];
  const src = text.trim();
  let i = 0;
  const bad = (why: string): never => {
    throw new UsageError(`Invalid label selector ${JSON.stringify(text)}: ${why}.`, { hint: 'Use e.g. app=web,tier!=cache,env in (prod,staging),!canary.' });
  };
  const skipSpace = (): void => {
    while (src[i] === ' ') i++;
  };
  const word = (): string => {
    skipSpace();
    const m = /^[A-Za-z0-9_./-]*/.exec(src.slice(i))![0];
    i += m.length;
    return m;
  };
  while (i < src.length) {
    skipSpace();
    if (src[i] === '!') {
      i++;
      const key = word();
      if (!key) bad('a key must follow "!"');
      expressions.push({ key, operator: 'DoesNotExist' });
    } else {
      const key = word();
      if (!key) bad(`expected a label key at position ${i + 1}`);
      skipSpace();
      const rest = src.slice(i);
      if (rest.startsWith('!=') || rest.startsWith('==') || rest.startsWith('=')) {
        const op = rest.startsWith('!=') ? 'NotIn' : 'In';
        i += rest.startsWith('=') && !rest.startsWith('==') ? 1 : 2;
        expressions.push({ key, operator: op, values: [word()] });
      } else if (/^(in|notin)\s*\(/.test(rest)) {
        const op = rest.startsWith('in') ? 'In' : 'NotIn';
        i += rest.indexOf('(') + 1;
        const close = src.indexOf(')', i);
        if (close < 0) bad('missing ")"');
        const values = src.slice(i, close).split(',').map((v) => v.trim());
        if (values.some((v) => !/^[A-Za-z0-9_.-]*$/.test(v))) bad('a value is not a valid label value');
        i = close + 1;
        expressions.push({ key, operator: op, values });
      } else {
        expressions.push({ key, operator: 'Exists' });
      }
    }
    skipSpace();
    if (i < src.length) {
      if (src[i] !== ',') bad(`unexpected ${JSON.stringify(src[i])} at position ${i + 1}`);
      i++;
      if (src.slice(i).trim() === '') bad('a requirement must follow ","');
    }
  }
  return { matchExpressions: expressions };
}
