/**
 * `infra check` fails (exit 2, file:line:col) when an alert rule's runbook_url points at a page
 * of this repository that does not exist; links elsewhere and computed page names are left alone.
 */
import { describe, it, expect } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkRunbookLinks, pageOf, runbookLinks } from '../../../src/docs/runbook-links.js';
import { UserErrors } from '../../../src/errors.js';
import { infra } from '../cli/run-cli.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURE = join(REPO, 'test/fixtures/docs/runbook-repo');

describe('pageOf: which links point into the repository, and at which page', () => {
  it.each([
    ['docs/runbooks/host-down.md', 'docs/runbooks/host-down.md'],
    ['./docs/runbooks/host-down.md#verify', 'docs/runbooks/host-down.md'],
    ['https://git.example.com/infra/blob/main/docs/runbooks/disk-full.md?plain=1', 'docs/runbooks/disk-full.md'],
    ['{{vars.repo_url}}/docs/runbooks/x.md', 'docs/runbooks/x.md'],
    ['{{vars.runbook_base_url}}/replication-lag.md', 'docs/runbooks/replication-lag.md'],
    ['{{ runbook_base }}x.md', 'docs/runbooks/x.md'],
    ['runbooks/old.md', 'runbooks/old.md'],
    ['https://wiki.example.com/upstream', undefined],
    ['{{vars.runbook_base_url}}/{{page}}', undefined],
    ['{{vars.wiki}}/page', undefined],
    ['docs/runbooks/', undefined],
  ])('%s → %s', (url, page) => {
    expect(pageOf(url)).toBe(page);
  });
});

describe('runbook links in roles', () => {
  it("finds every runbook_url in a role's files/ and templates/, with its line and column", async () => {
    const links = (await runbookLinks(join(FIXTURE, 'roles'))).map((l) => [l.file.slice(FIXTURE.length + 1), l.line, l.col, l.url, l.page]);
    expect(links).toEqual([
      ['roles/alerting/files/extra/json.rules.json', 1, 34, 'docs/runbooks/host-down.md', 'docs/runbooks/host-down.md'],
      ['roles/alerting/files/host.rules.yml', 8, 24, 'docs/runbooks/host-down.md', 'docs/runbooks/host-down.md'],
      ['roles/alerting/files/host.rules.yml', 12, 25, 'https://git.example.com/infra/blob/main/docs/runbooks/disk-full.md#symptoms', 'docs/runbooks/disk-full.md'],
      ['roles/alerting/files/host.rules.yml', 16, 24, 'https://wiki.example.com/upstream', undefined],
      ['roles/alerting/templates/replication.rules.yml.hbs', 7, 25, '{{vars.runbook_base_url}}/replication-lag.md', 'docs/runbooks/replication-lag.md'],
      ['roles/alerting/templates/replication.rules.yml.hbs', 11, 24, '{{../vars.runbook_base_url}}/{{page}}', undefined],
    ]);
  });

  it('every missing page is an error at its line; existing pages pass', async () => {
    const err = await checkRunbookLinks([join(FIXTURE, 'roles')], FIXTURE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserErrors);
    const lines = (err as UserErrors).format().split('\n').filter((l) => !l.startsWith('  hint'));
    expect(lines).toEqual([
      'roles/alerting/files/host.rules.yml:12:25: runbook link https://git.example.com/infra/blob/main/docs/runbooks/disk-full.md#symptoms points at a missing page: docs/runbooks/disk-full.md',
      'roles/alerting/templates/replication.rules.yml.hbs:7:25: runbook link {{vars.runbook_base_url}}/replication-lag.md points at a missing page: docs/runbooks/replication-lag.md',
    ]);
    expect((err as UserErrors).errors[0].hint).toMatch(/write docs\/runbooks\/disk-full\.md \(symptoms/);
  });

  it("the repository's own roles link only pages that exist", async () => {
    await expect(checkRunbookLinks([join(REPO, 'roles')], REPO)).resolves.toBeGreaterThanOrEqual(0);
  });

  it('infra check exits 2 with file:line:col before anything connects', async () => {
    const r = await infra(['check', '-i', 'one'], { cwd: FIXTURE });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: roles\/alerting\/files\/host\.rules\.yml:12:25: runbook link .* points at a missing page: docs\/runbooks\/disk-full\.md$/m);
    expect(r.stderr).toMatch(/roles\/alerting\/templates\/replication\.rules\.yml\.hbs:7:25: .*docs\/runbooks\/replication-lag\.md/);
  });
});
