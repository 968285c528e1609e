/**
 * Alertmanager's routing tree, as data (pure): by team (the alerts' `team` label), then by
 * severity — critical to the team's pager (repeated every critical_repeat until resolved),
 * warning to its chat (every warning_repeat), info to nobody. A team without receivers of
 * its own uses the default team's. The template renders this; amtool checks the result.
 */
import type { Secret } from 'infra';
import type { MonitoringVars } from './vars.js';

export interface Receiver {
  name: string;
  url: Secret;
  token?: Secret;
}

/** Where one team's alerts go, by severity (undefined: nowhere). */
export interface TeamRoute {
  /** The team matched; undefined: any team (the last route, the default team's receivers). */
  team?: string;
  /** Whose receivers these are. */
  receiversOf: string;
  critical?: string;
  warning?: string;
}

export interface AlertmanagerModel {
  receivers: Receiver[];
  /** One route per team with receivers, then the default team's for every other team. */
  routes: TeamRoute[];
}

/** The receiver that swallows what nobody must get (info, teams without any receiver). */
export const BLACKHOLE = 'blackhole';

export function alertmanagerModel(v: MonitoringVars): AlertmanagerModel {
  const receivers: Receiver[] = [];
  const routes: TeamRoute[] = [];
  for (const [team, r] of Object.entries(v.alertmanager_receivers)) {
    const route: TeamRoute = { team, receiversOf: team };
    if (r.pager) receivers.push({ name: (route.critical = `${team}-pager`), ...r.pager });
    if (r.chat) receivers.push({ name: (route.warning = `${team}-chat`), ...r.chat });
    if (route.critical || route.warning) routes.push(route);
  }
  const fallback = routes.find((t) => t.team === v.alertmanager_default_team);
  if (fallback) routes.push({ ...fallback, team: undefined });
  return { receivers, routes };
}
