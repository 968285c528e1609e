/** Maintenance windows: parsing, open/closed in the window's own time zone (summer time included), the next opening. */
import { describe, it, expect } from 'vitest';
import { describeOpening, isOpen, nextOpening, parseWindow } from '../../../src/patch/window.js';

describe('parseWindow', () => {
  it.each([
    ['Sun 02:00-04:00 Europe/Berlin', [0], 120, 240, 'Europe/Berlin'],
    ['Mon-Fri 22:00-23:30 UTC', [1, 2, 3, 4, 5], 1320, 1410, 'UTC'],
    ['Sat,Sun 23:00-01:00 UTC', [0, 6], 1380, 60, 'UTC'],
    ['Fri-Mon 01:00-02:00 America/New_York', [0, 1, 5, 6], 60, 120, 'America/New_York'],
    ['daily 00:00-24:00 UTC', [0, 1, 2, 3, 4, 5, 6], 0, 1440, 'UTC'],
    ['sunday 2:00-4:00 UTC', [0], 120, 240, 'UTC'],
  ])('%s', (text, days, start, end, tz) => {
    const w = parseWindow(text);
    expect([[...w.days].sort(), w.start, w.end, w.timeZone]).toEqual([days, start, end, tz]);
  });

  it.each([
    ['Sun 02:00 Europe/Berlin', /is not a window like/],
    ['Sun 02:00-04:00 Mars/Olympus', /unknown time zone "Mars\/Olympus"/],
    ['Sun-x 02:00-04:00 UTC', /"x" is not a day/],
    ['Sonntag 02:00-04:00 UTC', /"Sonntag" is not a day/],
    ['Sun 25:00-26:00 UTC', /25:00 is not a time of day/],
    ['Sun 02:00-02:00 UTC', /starts and ends at the same time/],
  ])('rejects %s', (text, message) => {
    expect(() => parseWindow(text)).toThrow(message);
  });
});

describe('isOpen', () => {
  const berlin = parseWindow('Sun 02:00-04:00 Europe/Berlin');
  it.each([
    // Winter (UTC+1): 02:00 Berlin = 01:00 UTC.
    ['2024-01-07T00:59:00Z', false],
    ['2024-01-07T01:00:00Z', true],
    ['2024-01-07T02:59:00Z', true],
    ['2024-01-07T03:00:00Z', false],
    // Summer (UTC+2): 02:00 Berlin = 00:00 UTC; the window follows the zone, not UTC.
    ['2024-07-07T00:00:00Z', true],
    ['2024-07-07T01:59:00Z', true],
    ['2024-07-07T02:00:00Z', false],
    // A Saturday at the same hour.
    ['2024-07-06T00:30:00Z', false],
  ])('Sun 02:00-04:00 Europe/Berlin at %s: %s', (at, open) => {
    expect(isOpen(berlin, new Date(at))).toBe(open);
  });

  it('a window past midnight belongs to the day it starts on', () => {
    const w = parseWindow('Sat 23:00-01:00 UTC');
    expect(isOpen(w, new Date('2024-07-06T23:30:00Z'))).toBe(true); // Saturday night
    expect(isOpen(w, new Date('2024-07-07T00:30:00Z'))).toBe(true); // Sunday morning, Saturday's window
    expect(isOpen(w, new Date('2024-07-07T23:30:00Z'))).toBe(false); // Sunday night: not listed
    expect(isOpen(w, new Date('2024-07-06T00:30:00Z'))).toBe(false); // Saturday morning: Friday's would be
  });
});

describe('nextOpening', () => {
  it('says when the window opens next, in its own zone, and how far that is', () => {
    const w = parseWindow('Sun 02:00-04:00 Europe/Berlin');
    const now = new Date('2024-07-03T10:00:00Z'); // a Wednesday
    const next = nextOpening(w, now);
    expect(next.toISOString()).toBe('2024-07-07T00:00:00.000Z');
    expect(describeOpening(next, w.timeZone, now)).toBe('Sun 2024-07-07 02:00 Europe/Berlin (in 3 d 14 h)');
  });

  it('is now when the window is open', () => {
    const w = parseWindow('daily 00:00-24:00 UTC');
    const now = new Date('2024-07-03T10:00:00Z');
    expect(nextOpening(w, now)).toBe(now);
  });

  it('across the switch to summer time', () => {
    const w = parseWindow('Sun 03:30-04:00 Europe/Berlin');
    // 2024-03-31: 02:00 → 03:00 Berlin; 03:30 CEST = 01:30 UTC.
    expect(nextOpening(w, new Date('2024-03-30T12:00:00Z')).toISOString()).toBe('2024-03-31T01:30:00.000Z');
  });
});
