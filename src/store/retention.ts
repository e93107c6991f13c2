/**
 * Retention maths (pure): which backups a policy keeps, and why.
 *
 * Backups are grouped (by kind and source cluster, so two clusters sharing a store never prune
 * each other's); within a group, newest first:
 *  - last N: the N newest;
 *  - hourly/daily/weekly/monthly/yearly N: the newest backup in each of the N most recent UTC
 *    hours/days/ISO weeks/months/years that have a backup;
 *  - within D: every backup made within D of the group's newest backup (not of "now", so a store
 *    whose backups stopped is not emptied by time alone);
 *  - the newest backup of a group is always kept.
 */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  withinMs?: number;
}

export interface RetentionItem {
  id: string;
  group: string;
  time: Date;
}

export interface RetentionDecision<T extends RetentionItem> {
  item: T;
  keep: boolean;
  reasons: string[];
}

const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type Period = (typeof PERIODS)[number];

export function periodKey(period: Period, t: Date): string {
  const iso = t.toISOString();
  switch (period) {
    case 'hourly':
      return iso.slice(0, 13);
    case 'daily':
      return iso.slice(0, 10);
    case 'monthly':
      return iso.slice(0, 7);
    case 'yearly':
      return iso.slice(0, 4);
    case 'weekly': {
      const { year, week } = isoWeek(t);
      return `${year}-W${String(week).padStart(2, '0')}`;
    }
  }
}

/** ISO 8601 week number and week-year of a UTC date. */
export function isoWeek(t: Date): { year: number; week: number } {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const day = d.getUTCDay() || 7; // Monday 1 .. Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - day); // Thursday of this week decides the year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return { year: d.getUTCFullYear(), week };
}

export function isEmptyPolicy(p: RetentionPolicy): boolean {
  return !p.last && !p.withinMs && PERIODS.every((k) => !p[k]);
}

export function applyRetention<T extends RetentionItem>(items: T[], policy: RetentionPolicy): RetentionDecision<T>[] {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const g = groups.get(it.group);
    if (g) g.push(it);
    else groups.set(it.group, [it]);
  }
  const out: RetentionDecision<T>[] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1));
    const newest = group[0]!.time.getTime();
    const remaining: Record<Period, number> = {
      hourly: policy.hourly ?? 0,
      daily: policy.daily ?? 0,
      weekly: policy.weekly ?? 0,
      monthly: policy.monthly ?? 0,
      yearly: policy.yearly ?? 0,
    };
    const lastBucket: Partial<Record<Period, string>> = {};
    group.forEach((item, index) => {
      const reasons: string[] = [];
      if (index === 0) reasons.push('newest');
      if (policy.last && index < policy.last) reasons.push('last');
      if (policy.withinMs !== undefined && policy.withinMs > 0 && newest - item.time.getTime() <= policy.withinMs) reasons.push('within');
      for (const period of PERIODS) {
        if (remaining[period] <= 0) continue;
        const key = periodKey(period, item.time);
        if (lastBucket[period] !== key) {
          lastBucket[period] = key;
          remaining[period]--;
          reasons.push(period);
        }
      }
      out.push({ item, keep: reasons.length > 0, reasons });
    });
  }
  return out;
}
