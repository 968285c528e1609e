/**
 * Root must never follow a path another user controls. The shell functions here walk into a
 * directory one component at a time and pin it as the working directory: from then on the
 * script names files relative to "." (an inode, not a path), so no later rename or symlink
 * swap elsewhere on the path can redirect what root does.
 *
 *   infra_walk DIR [create]  cd into DIR; a symlink on the way is followed only when root owns
 *                            it and it sits in a directory only root can change (so no user
 *                            could have placed or swapped it); `create` makes missing
 *                            directories (0755, root's).
 *   infra_own_dir UID        refuses unless "." can be written only by root and UID (owner,
 *                            group write only for group root, world write only when sticky and
 *                            root's, as /tmp): nobody else can swap entries in it.
 *
 * A refusal prints "refusing: …" on stderr and exits UNSAFE_PATH. Whether a symlink was
 * followed is decided from the pinned result ($PWD after `cd -P`), not from a check made
 * before it, so a racer flipping a component between a check and the cd gains nothing.
 */

/** Exit code of a script that refused an unsafe path (the message is on stderr). */
export const UNSAFE_PATH = 77;

export const PINNED_DIR_FUNCTIONS = `infra_refuse() { echo "refusing: $*" >&2; exit ${UNSAFE_PATH}; }
infra_stat() { set -- $(stat -L -c '%u %g %a' -- "$1") && [ $# = 3 ] || exit 1; infra_u=$1; infra_g=$2; infra_m=0$3; }
infra_root_only() {
  infra_stat "$1"
  [ "$infra_u" = 0 ] && { [ $((infra_m & 020)) = 0 ] || [ "$infra_g" = 0 ]; } && { [ $((infra_m & 02)) = 0 ] || [ $((infra_m & 01000)) != 0 ]; }
}
infra_walk() {
  cd -P / || exit 1
  infra_rest=\${1#/}
  while [ -n "$infra_rest" ]; do
    infra_c=\${infra_rest%%/*}
    case $infra_rest in */*) infra_rest=\${infra_rest#*/} ;; *) infra_rest= ;; esac
    [ -n "$infra_c" ] || continue
    infra_up=$PWD
    infra_l=\${infra_up%/}/$infra_c
    if [ "$2" = create ] && [ ! -e "./$infra_c" ] && [ ! -L "./$infra_c" ]; then mkdir -m 0755 -- "./$infra_c" || exit 1; fi
    cd -P -- "./$infra_c" || exit 1
    if [ "$PWD" != "$infra_l" ]; then
      { [ -L "$infra_l" ] && [ "$(stat -c %u -- "$infra_l")" = 0 ] && infra_root_only "$infra_up"; } ||
        infra_refuse "$infra_l is a symlink that a user other than root can replace"
    fi
  done
}
infra_own_dir() {
  infra_stat .
  case $infra_u in 0|"$1") ;; *) infra_refuse "$PWD is owned by uid $infra_u (only root and the file's owner may own it)" ;; esac
  [ $((infra_m & 020)) = 0 ] || [ "$infra_g" = 0 ] || infra_refuse "$PWD is writable by group $infra_g (only root and the file's owner may write there)"
  [ $((infra_m & 02)) = 0 ] || { [ $((infra_m & 01000)) != 0 ] && [ "$infra_u" = 0 ]; } || infra_refuse "$PWD is writable by everyone"
}`;
