/**
 * Maintenance windows: "DAYS HH:MM-HH:MM TIMEZONE" (pure). The time zone is an IANA name read
 * with Intl, so summer time is the zone's own business, not ours:
 *
 *   Sun 02:00-04:00 Europe/Berlin     Mon-Fri 22:00-23:30 UTC     Sat,Sun 23:00-01:00 UTC
 *
 * DAYS: a day (Mon..Sun), a range (Mon-Fri), a list (Sat,Sun; items may be ranges) or
 * "daily". A window whose end is before its start runs past midnight and belongs to the day
 * it starts on. The end is exclusive.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const FULL_DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

export interface MaintenanceWindow {
  text: string;
  /** 0 = Sunday. */
  days: Set<number>;
  /** Minutes after local midnight. */
  start: number;
  end: number;
  timeZone: string;
}

export function parseWindow(text: string): MaintenanceWindow {
  const m = /^\s*(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s+(\S+)\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a window like "Sun 02:00-04:00 Europe/Berlin"`);
  const [, days, sh, sm, eh, em, timeZone] = m;
  const start = minutes(Number(sh), Number(sm), text);
  const end = minutes(Number(eh), Number(em), text);
  if (start === end) throw new Error(`"${text}": the window starts and ends at the same time`);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new Error(`"${text}": unknown time zone "${timeZone}" (an IANA name: Europe/Berlin, UTC, America/New_York)`);
  }
  return { text: text.trim(), days: parseDays(days, text), start, end, timeZone };
}

function minutes(h: number, m: number, text: string): number {
  if (h > 24 || m > 59 || (h === 24 && m !== 0)) throw new Error(`"${text}": ${h}:${String(m).padStart(2, '0')} is not a time of day`);
  return h * 60 + m;
}

function parseDays(spec: string, text: string): Set<number> {
  if (/^(daily|\*)$/i.test(spec)) return new Set([0, 1, 2, 3, 4, 5, 6]);
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map((d) => dayIndex(d, text));
    if (b === undefined) out.add(a);
    else for (let d = a; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === b) break;
    }
  }
  return out;
}

function dayIndex(name: string, text: string): number {
  const n = name.toLowerCase();
  const i = FULL_DAYS.findIndex((d) => n === d || n === d.slice(0, 3));
  if (i < 0) throw new Error(`"${text}": "${name}" is not a day (Mon Tue Wed Thu Fri Sat Sun, a range Mon-Fri, a list Sat,Sun, or daily)`);
  return i;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The local weekday (0 = Sunday) and minute of the day of `at` in the zone. */
export function localTime(at: Date, timeZone: string): { day: number; minute: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return { day: DAYS.indexOf(parts.weekday as (typeof DAYS)[number]), minute: (Number(parts.hour) % 24) * 60 + Number(parts.minute) };
}

export function isOpen(w: MaintenanceWindow, at: Date): boolean {
  const { day, minute } = localTime(at, w.timeZone);
  if (w.start < w.end) return w.days.has(day) && minute >= w.start && minute < w.end;
  // Past midnight: the evening part on a listed day, the morning part the day after one.
  return (w.days.has(day) && minute >= w.start) || (w.days.has((day + 6) % 7) && minute < w.end);
}

const MINUTE = 60_000;

/** When the window next opens after `from` (now, if open now); scanned minute by minute over 8 days. */
export function nextOpening(w: MaintenanceWindow, from: Date): Date {
  if (isOpen(w, from)) return from;
  const t0 = Math.floor(from.getTime() / MINUTE) * MINUTE + MINUTE;
  for (let t = t0; t < t0 + 8 * 24 * 60 * MINUTE; t += MINUTE) if (isOpen(w, new Date(t))) return new Date(t);
  throw new Error(`window "${w.text}" never opens`);
}

/** "Sun 2024-06-09 02:00 Europe/Berlin (in 2 d 3 h)". */
export function describeOpening(at: Date, timeZone: string, now: Date): string {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, x.value]));
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${timeZone} (in ${formatSpan(at.getTime() - now.getTime())})`;
}

function formatSpan(ms: number): string {
  const min = Math.max(0, Math.round(ms / MINUTE));
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  return [d ? `${d} d` : '', h ? `${h} h` : '', !d && m ? `${m} min` : ''].filter(Boolean).join(' ') || 'less than a minute';
}
