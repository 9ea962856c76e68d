#!/usr/bin/env bash
# Make a GIMP 3 with Python plug-in support available for the `gimp` tests. Idempotent: a second
# run only checks (~1 s). Called by .ci/run before pytest; run it by hand as root the same way.
#
#   Debian 13 (trixie) and later: apt-get install gimp on the host; gimp-console runs directly.
#   Debian 12 (bookworm): trixie's GIMP would upgrade libc6/dpkg/systemd on the host, so it goes into
#     a minimal trixie chroot at $GIMP3_ROOT (default /var/tmp/gimp3-root) built with debootstrap from
#     the mirror the host's apt already uses; tests/gimp/harness.py enters it with unshare + chroot.
#
# Environment: GIMP3_ROOT (chroot folder), MIRROR / SEC_MIRROR (override the Debian mirrors),
# GIMP3_SUITE: trixie (default: GIMP 3.0.x) or sid (GIMP 3.2.x; default root /var/tmp/gimp32-root,
# always a chroot, also on a Debian 13 host). GIMP 3.2 has no gimp-console-3.0: `gimp-console` is the
# name both have.
# Also installs Xvfb and xdotool on the host (the undo test drives GIMP's real UI).
# Prints the GIMP version on the last line. First run on bookworm: ~2 minutes, ~750 MB.
set -euo pipefail

SUITE=${GIMP3_SUITE:-trixie}
case $SUITE in
  trixie) ROOT=${GIMP3_ROOT:-/var/tmp/gimp3-root} ;;
  sid) ROOT=${GIMP3_ROOT:-/var/tmp/gimp32-root} ;;
  *) echo "GIMP3_SUITE=$SUITE: use trixie (GIMP 3.0) or sid (GIMP 3.2)" >&2; exit 2 ;;
esac
# gimp pulls python3-gi, gir1.2-gimp-3.0 and gir1.2-gegl-0.4; GExiv2's typelib (metadata) is only a
# Recommends of gimp, so it is named.
PKGS=(gimp python3-gi gir1.2-gimp-3.0 gir1.2-gexiv2-0.10)
# On the host: a virtual X display and a key presser, for the one test that needs GIMP's real UI
# (Ctrl+Z: libgimp has no undo call) and for the dialog screenshot.
HOST_TOOLS=(xvfb xdotool)

say() { printf '[ensure_gimp %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root for: $*"; fi
}

all_installed() {  # all_installed DPKG_QUERY_PREFIX... : are all of PKGS installed?
  local p
  for p in "${PKGS[@]}"; do
    [ "$("$@" dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || return 1
  done
}

host_tools() {
  command -v Xvfb >/dev/null && command -v xdotool >/dev/null && return 0
  say "apt-get install --no-install-recommends ${HOST_TOOLS[*]} (host)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${HOST_TOOLS[@]}" \
    >/dev/null
}

major=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
case $major in
  [0-9]*) ;;
  *) major=99 ;;  # testing/sid write a codename ("trixie/sid"): treat as new
esac

# ---------------------------------------------------------------- Debian 13+: plain apt
if [ "$major" -ge 13 ] && [ "$SUITE" = trixie ]; then
  if all_installed; then
    say "GIMP packages already installed on the host"
  else
    say "apt-get install --no-install-recommends ${PKGS[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}" \
      >/dev/null
  fi
  host_tools
  gimp-console --version | head -1
  exit 0
fi

# ---------------------------------------------------------------- Debian 12 (or sid wanted): a chroot
[ "$major" -ge 12 ] || die "unsupported Debian version $(cat /etc/debian_version 2>/dev/null) (need 12 or 13+)"
[ "$(id -u)" = 0 ] || die "building the GIMP 3 chroot needs root (debootstrap, chroot, unshare)"

apt_uri() {  # the host's main Debian mirror, from deb822 .sources or one-line .list files
  local f u
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    u=$(awk 'BEGIN{RS="";FS="\n"} !/security/ && /Suites:/ {
              for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, " ");
              print a[1]; exit } }' "$f")
    [ -n "$u" ] && { echo "$u"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    u=$(awk '$1 == "deb" && !/security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f")
    [ -n "$u" ] && { echo "$u"; return; }
  done
  echo http://deb.debian.org/debian
}
sec_uri() {
  local u
  u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -v '^[[:space:]]*#' |
      grep -oE 'https?://[^ ]*debian-security' | head -1 || true)
  echo "${u:-${MIRROR%/debian}/debian-security}"
}
MIRROR=${MIRROR:-$(apt_uri)}
SEC_MIRROR=${SEC_MIRROR:-$(sec_uri)}

in_root() {  # run a command in the chroot; mounts live in a private namespace and vanish afterwards
  unshare --mount --propagation private -- bash -c '
    R=$1; shift
    mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; mount -t sysfs sys "$R/sys"
    mount -t tmpfs tmpfs "$R/tmp" -o mode=1777
    exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      LANG=C.UTF-8 HOME=/root "$@"' _ "$ROOT" "$@"
}

host_tools
if [ -x "$ROOT/usr/bin/gimp-console" ] && all_installed in_root; then
  say "GIMP 3 ($SUITE) chroot ready at $ROOT"
  in_root gimp-console --version 2>/dev/null | head -1
  exit 0
fi

command -v debootstrap >/dev/null || {
  say "installing debootstrap on the host"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# debootstrap removes $ROOT/debootstrap only after a complete run: its presence means "interrupted".
if [ -d "$ROOT/debootstrap" ] || [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  [ -e "$ROOT" ] && { say "removing unfinished chroot $ROOT"; rm -rf --one-file-system "$ROOT"; }
  say "debootstrap --variant=minbase $SUITE $ROOT $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"/var/tmp/gimp3-debootstrap-$SUITE.log" 2>&1 ||
    { tail -20 "/var/tmp/gimp3-debootstrap-$SUITE.log"; die "debootstrap failed"; }
fi

if [ "$SUITE" = sid ]; then  # sid has no -updates/-security suites
  printf 'deb %s sid main\n' "$MIRROR" > "$ROOT/etc/apt/sources.list"
else
  printf 'deb %s trixie main\ndeb %s trixie-updates main\ndeb %s trixie-security main\n' \
    "$MIRROR" "$MIRROR" "$SEC_MIRROR" > "$ROOT/etc/apt/sources.list"
fi
# a mirror's sid Release file may be past its Valid-Until date (apt-get update then refuses it)
echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99no-valid-until"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"   # no daemons from maintainer scripts
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

say "installing ${PKGS[*]} in the chroot"
in_root sh -c "apt-get -o Acquire::Check-Valid-Until=false update -qq && apt-get install -y -q --no-install-recommends ${PKGS[*]} \
  >/var/log/gimp3-install.log 2>&1 || { tail -30 /var/log/gimp3-install.log; exit 1; }"
in_root apt-get clean
all_installed in_root || die "GIMP packages missing in $ROOT after install"
say "GIMP 3 ($SUITE) chroot ready at $ROOT ($(du -sh --one-file-system "$ROOT" | cut -f1))"
in_root gimp-console --version 2>/dev/null | head -1
