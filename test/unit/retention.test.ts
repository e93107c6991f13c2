import { describe, expect, it } from 'vitest';
import { applyRetention, isoWeek, periodKey, type RetentionPolicy } from '../../src/store/retention.js';

const H = 3_600_000;
const D = 24 * H;

/** Backups at the given UTC times, all in one group. */
function items(times: string[], group = 'etcd') {
  return times.map((t, i) => ({ id: `b${i}-${t}`, group, time: new Date(t) }));
}

function kept(times: string[], policy: RetentionPolicy, group?: string): string[] {
  return applyRetention(items(times, group), policy)
    .filter((d) => d.keep)
    .map((d) => d.item.time.toISOString().replace('.000Z', 'Z'))
    .sort();
}

describe('applyRetention', () => {
  // Four backups a day (00, 06, 12, 18 UTC) for 40 days ending 2026-11-22T18:00Z.
  const end = Date.parse('2026-11-22T18:00:00Z');
  const series = Array.from({ length: 160 }, (_, i) => new Date(end - i * 6 * H).toISOString().replace('.000Z', 'Z'));

  const cases: { name: string; policy: RetentionPolicy; expect: string[] | ((k: string[]) => void) }[] = [
    { name: 'keep-last 3', policy: { last: 3 }, expect: ['2026-11-22T06:00:00Z', '2026-11-22T12:00:00Z', '2026-11-22T18:00:00Z'] },
    {
      name: 'keep-daily 3 keeps the newest of each of the last 3 days',
      policy: { daily: 3 },
      expect: ['2026-11-20T18:00:00Z', '2026-11-21T18:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      name: 'keep-hourly 2: newest of the last two hours that have backups',
      policy: { hourly: 2 },
      expect: ['2026-11-22T12:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      // 2026-11-22 is a Sunday: ISO weeks end on Sunday, so the newest of each week is a Sunday 18:00.
      name: 'keep-weekly 3 keeps Sundays (ISO weeks end on Sunday)',
      policy: { weekly: 3 },
      expect: ['2026-11-08T18:00:00Z', '2026-11-15T18:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      name: 'keep-monthly 3 with only two months of data keeps the newest of each month present',
      policy: { monthly: 3 },
      expect: ['2026-10-31T18:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      name: 'keep-within 1d is relative to the newest backup, inclusive',
      policy: { withinMs: D },
      expect: ['2026-11-21T18:00:00Z', '2026-11-22T00:00:00Z', '2026-11-22T06:00:00Z', '2026-11-22T12:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      name: 'rules combine as a union',
      policy: { last: 2, daily: 2 },
      expect: ['2026-11-21T18:00:00Z', '2026-11-22T12:00:00Z', '2026-11-22T18:00:00Z'],
    },
    {
      name: 'a policy that keeps less still keeps the newest',
      policy: { monthly: 1 },
      expect: ['2026-11-22T18:00:00Z'],
    },
    {
      name: 'keep-daily larger than the data keeps one per day for every day',
      policy: { daily: 100 },
      expect: (k) => {
        expect(k).toHaveLength(40);
        expect(k.every((t) => t.endsWith('T18:00:00Z'))).toBe(true);
      },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const k = kept(series, c.policy);
      if (typeof c.expect === 'function') c.expect(k);
      else expect(k).toEqual(c.expect);
    });
  }

  it('never removes the newest backup of a group, even with an empty policy', () => {
    expect(kept(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'], {})).toEqual(['2026-01-02T00:00:00Z']);
  });

  it('groups are pruned independently', () => {
    const all = [
      ...items(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'], 'etcd\0cluster-a'),
      ...items(['2026-01-01T12:00:00Z'], 'etcd\0cluster-b'),
    ];
    const decisions = applyRetention(all, { last: 1 });
    const keep = decisions.filter((d) => d.keep).map((d) => `${d.item.group}@${d.item.time.toISOString()}`);
    expect(keep.sort()).toEqual(['etcd\0cluster-a@2026-01-03T00:00:00.000Z', 'etcd\0cluster-b@2026-01-01T12:00:00.000Z']);
  });

  it('records why each backup is kept', () => {
    const d = applyRetention(items(['2026-11-22T18:00:00Z', '2026-11-21T18:00:00Z', '2026-11-20T18:00:00Z']), { last: 1, daily: 2 });
    const byTime = Object.fromEntries(d.map((x) => [x.item.time.toISOString().slice(0, 10), x.reasons]));
    expect(byTime).toEqual({ '2026-11-22': ['newest', 'last', 'daily'], '2026-11-21': ['daily'], '2026-11-20': [] });
  });
});

describe('period keys', () => {
  it.each([
    ['2026-01-01T00:00:00Z', 2026, 1], // Thursday
    ['2027-01-01T00:00:00Z', 2026, 53], // Friday: belongs to the last week of 2026
    ['2024-12-30T00:00:00Z', 2025, 1], // Monday of week 1 of 2025
    ['2026-11-22T23:59:59Z', 2026, 47], // Sunday
    ['2026-11-23T00:00:00Z', 2026, 48], // Monday
  ])('ISO week of %s is %i-W%i', (t, year, week) => {
    expect(isoWeek(new Date(t))).toEqual({ year, week });
  });

  it('uses UTC for hours, days and months', () => {
    const t = new Date('2026-03-09T23:30:00Z');
    expect(periodKey('hourly', t)).toBe('2026-03-09T23');
    expect(periodKey('daily', t)).toBe('2026-03-09');
    expect(periodKey('monthly', t)).toBe('2026-03');
    expect(periodKey('yearly', t)).toBe('2026');
  });
});
