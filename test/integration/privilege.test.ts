/**
 * Root against a hostile local user, on a real Debian 12 container: the user owns a home and
 * a drop directory and tries to make root follow their symlinks (issue 10, items 1–3, 30).
 * Every write goes through the product's session and put(); the assertions read the host
 * back with docker exec.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { files, users } from '../../src/modules/index.js';
import type { Task } from '../../src/modules/types.js';
import { checkOnly, converge, startDockerHost, type DockerHost } from './helpers/docker-host.js';

let h: DockerHost;
const t = (task: Task<any>) => task as Task<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf4q1n2Z9o0U2w1b5mQy3b7r0VdB4Jxk4s5mJ6Yh8Qw ops@laptop';

beforeAll(async () => {
  h = await startDockerHost();
  await sh(
    [
      'useradd -m -s /bin/sh -u 2001 mallory',
      'useradd -m -s /bin/sh -u 2002 carol',
      // A root-only directory and file the user would like to own.
      'install -d -m 0700 /root/vault && echo "root secret" > /root/vault/data && chmod 0600 /root/vault/data',
      'printf "victim\\n" > /etc/victim && chmod 0600 /etc/victim',
    ].join(' && '),
  );
}, 60_000);
afterAll(async () => {
  await h?.down();
});

const sh = (cmd: string): Promise<string> => h.sh(cmd);
const asMallory = (cmd: string): Promise<string> => sh(`su -s /bin/sh mallory -c '${cmd}'`);

describe('users.authorizedKey does not follow the user', () => {
  it('~/.ssh → a root-owned directory: refused, the directory stays root\'s', async () => {
    await asMallory('ln -s /root/vault ~/.ssh');
    const err = await converge(h.ctx, t(users.authorizedKey({ user: 'mallory', key: KEY }))).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/refusing: \/home\/mallory\/.ssh is a symlink/);
    expect(await sh('stat -c "%U %a" /root/vault /root/vault/data; ls /root/vault')).toBe('root 700\nroot 600\ndata\n');
    // Check mode refuses too, and reads nothing through the link.
    await expect(checkOnly(h.checkCtx, t(users.authorizedKey({ user: 'mallory', key: KEY })))).rejects.toThrow(/is a symlink/);
  });

  it('~/.ssh → /etc: refused (the repro that handed out root)', async () => {
    await asMallory('rm ~/.ssh && ln -s /etc ~/.ssh');
    await expect(converge(h.ctx, t(users.authorizedKey({ user: 'mallory', key: KEY })))).rejects.toThrow(/is a symlink/);
    expect(await sh('stat -c "%U %a" /etc; test -e /etc/authorized_keys || echo none')).toBe('root 755\nnone\n');
  });

  it('authorized_keys → a root-only file: refused, the file untouched and unread', async () => {
    await asMallory('rm ~/.ssh && mkdir -m 700 ~/.ssh && ln -s /root/vault/data ~/.ssh/authorized_keys');
    const err = await checkOnly(h.ctx, t(users.authorizedKey({ user: 'mallory', key: KEY }))).catch((e) => e);
    expect(err.message).toMatch(/refusing: \/home\/mallory\/.ssh\/authorized_keys is a symlink/);
    expect(err.message).not.toContain('root secret');
    expect(await sh('stat -c "%U %a" /root/vault/data; cat /root/vault/data')).toBe('root 600\nroot secret\n');
  });

  it('~/.ssh owned by someone else: refused', async () => {
    await sh('rm -rf /home/mallory/.ssh && install -d -m 0700 -o carol /home/mallory/.ssh');
    await expect(converge(h.ctx, t(users.authorizedKey({ user: 'mallory', key: KEY })))).rejects.toThrow(
      /refusing: \/home\/mallory\/.ssh is owned by carol, not mallory/,
    );
    expect(await sh('stat -c %U /home/mallory/.ssh')).toBe('carol\n');
  });

  it('a normal home still works: ~/.ssh created 0700 and the key file 0600, both the user\'s', async () => {
    await sh('rm -rf /home/mallory/.ssh');
    const c = await converge(h.ctx, t(users.authorizedKey({ user: 'mallory', key: KEY })));
    expect(c.after.changes).toEqual([]);
    expect(await sh('stat -c "%a %U %G" /home/mallory/.ssh /home/mallory/.ssh/authorized_keys; cat /home/mallory/.ssh/authorized_keys')).toBe(
      `700 mallory mallory\n600 mallory mallory\n${KEY}\n`,
    );
  });
});

describe('put() in directories a user controls', () => {
  it('refuses a directory writable by another user, by a group, or by everyone', async () => {
    await sh('install -d -m 0755 -o mallory /srv/mallory-owned && install -d -m 0775 -g mallory /srv/group-writable && install -d -m 0777 /srv/open');
    for (const [dir, why] of [
      ['/srv/mallory-owned', /owned by uid 2001/],
      ['/srv/group-writable', /writable by group 2001/],
      ['/srv/open', /writable by everyone/],
    ] as const) {
      await expect(h.ctx.put(`${dir}/app.conf`, 'x\n', { mode: '0600' })).rejects.toThrow(why);
      expect(await sh(`ls -A ${dir} | wc -l`)).toBe('0\n');
    }
    // The directory's owner writing their own file is fine: they could do it themselves.
    await h.ctx.put('/srv/mallory-owned/app.conf', 'x\n', { owner: 'mallory', mode: '0600' });
    expect(await sh('stat -c "%U %a" /srv/mallory-owned/app.conf')).toBe('mallory 600\n');
  });

  it('refuses a path through a symlink the user placed', async () => {
    await asMallory('ln -s /etc ~/etc-link');
    await expect(h.ctx.put('/home/mallory/etc-link/cron.d-like', 'x\n')).rejects.toThrow(
      /refusing: \/home\/mallory\/etc-link is a symlink that a user other than root can replace/,
    );
    expect((await h.exec('test -e /etc/cron.d-like')).code).toBe(1);
  });

  it('files.directory does not follow a user\'s symlink to chown/chmod its target', async () => {
    await asMallory('ln -s /root/vault ~/data');
    const task = t(files.directory({ path: '/home/mallory/data/sub', owner: 'mallory', mode: '0777' }));
    await expect(converge(h.ctx, task)).rejects.toThrow(/refusing: \/home\/mallory\/data is a symlink/);
    expect(await sh('stat -c "%U %a" /root/vault; ls /root/vault')).toBe('root 700\ndata\n');
  });

  it('a racer swapping the temp file for a symlink never gets a root file (100 writes)', async () => {
    // mallory owns ~/drop and root writes mallory's config there; a perl loop (as mallory)
    // replaces every temp file it sees with a symlink to /etc/victim (root, 0600).
    await sh('install -d -m 0755 -o mallory -g mallory /home/mallory/drop && rm -f /tmp/racer.count');
    const racer = `
      my ($dir) = @ARGV; my $n = 0; opendir(my $dh, $dir) or die;
      until (-e "$dir/STOP") {
        rewinddir($dh);
        for my $f (readdir $dh) {
          next unless $f =~ /\\.infra-/;
          symlink("/etc/victim", "$dir/.swap") and rename("$dir/.swap", "$dir/$f") and $n++;
        }
      }
      open(my $o, ">", "/tmp/racer.count"); print $o "$n\\n";`;
    const started = h.exec(`setpriv --reuid=2001 --regid=2001 --clear-groups perl -e '${racer}' /home/mallory/drop`);
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      await h.ctx.put('/home/mallory/drop/app.conf', `v${i}\n`, { owner: 'mallory', group: 'mallory', mode: '0644' }).catch((e: Error) => {
        expect(e.message).toMatch(/was replaced while being written|refusing/);
        refused++;
      });
    }
    await sh('touch /home/mallory/drop/STOP');
    expect((await started).code).toBe(0);
    const swaps = Number((await sh('cat /tmp/racer.count')).trim());
    console.log(`racer swapped ${swaps} temp files; ${refused} of 100 puts refused, ${100 - refused} written`);
    expect(swaps).toBeGreaterThan(0); // the race really ran
    expect(await sh('stat -c "%U %G %a" /etc/victim; cat /etc/victim')).toBe('root root 600\nvictim\n');
    // No temp file of ours is left behind (the racer's own symlinks may be).
    expect(await sh('find /home/mallory/drop -name ".*infra-*" ! -type l | wc -l')).toBe('0\n');
  }, 180_000);
});

describe('a full disk during put()', () => {
  it('fails with the error and leaves no partial temp file', async () => {
    await sh('mkdir -p /small && mount -t tmpfs -o size=64k tmpfs /small');
    try {
      const err = await h.ctx.put('/small/big.bin', Buffer.alloc(200_000, 7)).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/put \/small\/big.bin failed .*No space left on device/s);
      expect(await sh('ls -A /small | wc -l; df -k /small | tail -1 | awk "{print \\$3}"')).toBe('0\n0\n');
    } finally {
      await sh('umount /small');
    }
  });
});
