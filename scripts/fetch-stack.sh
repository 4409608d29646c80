#!/usr/bin/env bash
# Fetch the real observability stack used by the end-to-end tests:
#   prometheus, promtool, prometheus-alertmanager (+ amtool),
#   docker-compose (the Compose v2 CLI plugin: validates docker-compose.yml, no engine needed)
# from Debian 13 (trixie), unpacked with `dpkg -x` into <repo>/.stack/root — never installed.
#
# The OpenTelemetry Collector is not a Debian package: scripts/build-collector.sh builds it from
# upstream Go modules into .stack/otelcol. See shared design TEST-RIG.md. A private apt configuration (own sources.list, lists and
# cache dirs under .stack/apt) is used, so the machine's own apt state is never touched.
# A second run with everything in place exits at once ("stack: cached").
#
# Environment:
#   VIGIL_DEBIAN_MIRROR  archive URI to use instead of the one in the machine's debian.sources
#   VIGIL_STACK_REFRESH=1  ignore the cache and fetch again
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/.stack"
DEST="$STACK/root"
APTDIR="$STACK/apt"
STAMP="$STACK/.complete"

SUITE=trixie
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES=(prometheus promtool prometheus-alertmanager docker-compose)
# binaries that must exist under $DEST (and run) after unpacking, relative to it. Debian ships
# Compose v2 as a Docker CLI plugin; the plugin binary also runs on its own as `docker-compose`.
BINS=(
  usr/bin/prometheus
  usr/bin/promtool
  usr/bin/prometheus-alertmanager
  usr/bin/amtool
  usr/libexec/docker/cli-plugins/docker-compose
)
# Bumped whenever what is fetched changes, so that a cached .stack from before is fetched again.
STAMP_VERSION=3

# Debian's Alertmanager is patched to read its notification templates from a fixed directory
# (instead of the copies upstream embeds in the binary) and exits at startup without them
# ("failed to parse templates: open /usr/share/prometheus/alertmanager/default.tmpl", and once
# that one exists, the same for email.tmpl). No flag points it elsewhere, so we copy the two
# templates shipped in the unpacked package to that directory when they are missing. These are
# the only files written outside the repo; CI and developers run as root. Templates already
# there (e.g. from an installed prometheus-alertmanager) are left alone.
AM_TEMPLATE_DIR=/usr/share/prometheus/alertmanager
AM_TEMPLATES=(default.tmpl email.tmpl)

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }

stamp_text() { printf '%s\n' "suite=$SUITE" "packages=${PACKAGES[*]}" "stamp=$STAMP_VERSION"; }

is_cached() {
  [[ "${VIGIL_STACK_REFRESH:-}" != 1 ]] || return 1
  [[ -f "$STAMP" ]] || return 1
  [[ "$(sed -n '1,3p' "$STAMP")" == "$(stamp_text)" ]] || return 1
  local b
  for b in "${BINS[@]}"; do [[ -x "$DEST/$b" ]] || return 1; done
  local t
  for t in "${AM_TEMPLATES[@]}"; do [[ -f "$DEST$AM_TEMPLATE_DIR/$t" ]] || return 1; done
}

ensure_am_templates() {
  local t
  for t in "${AM_TEMPLATES[@]}"; do
    [[ -f "$AM_TEMPLATE_DIR/$t" ]] && continue
    if install -D -m 0644 "$DEST$AM_TEMPLATE_DIR/$t" "$AM_TEMPLATE_DIR/$t" 2>/dev/null; then
      say "installed Alertmanager template $AM_TEMPLATE_DIR/$t (Debian's build reads it from that fixed path)"
    else
      die "Alertmanager needs $AM_TEMPLATE_DIR/$t and $(id -un) cannot create it.
       Run as root, or: sudo install -D -m 0644 '$DEST$AM_TEMPLATE_DIR/$t' '$AM_TEMPLATE_DIR/$t'"
    fi
  done
}

if is_cached; then
  ensure_am_templates
  say "cached"
  exit 0
fi

mkdir -p "$STACK"
# Serialise concurrent runs (e.g. `npm run test:e2e` started twice); re-check after the wait.
exec 9>"$STACK/.lock"
flock 9
if is_cached; then
  ensure_am_templates
  say "cached"
  exit 0
fi

for tool in apt-get dpkg dpkg-deb flock; do
  command -v "$tool" >/dev/null || die "'$tool' is required (Debian/Ubuntu with apt)"
done
[[ -r "$KEYRING" ]] || die "$KEYRING is missing: apt-get install debian-archive-keyring"

# --- archive URI: reuse the machine's own Debian mirror -------------------------------------
mirror="${VIGIL_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" && -r /etc/apt/sources.list.d/debian.sources ]]; then
  # deb822: first enabled "Types: deb" stanza whose URI/suites are not the security archive.
  mirror="$(awk '
    BEGIN { RS = ""; FS = "\n" }
    {
      types = ""; uris = ""; suites = ""; enabled = 1
      for (i = 1; i <= NF; i++) {
        line = $i
        if (line ~ /^[ \t]*#/) continue
        key = tolower(line); sub(/:.*/, "", key)
        val = line; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "enabled" && tolower(val) ~ /^no/) enabled = 0
      }
      if (!enabled || types !~ /(^|[ \t])deb([ \t]|$)/) next
      if (uris ~ /security/ || suites ~ /security/) next
      n = split(uris, u, /[ \t]+/)
      for (j = 1; j <= n; j++) if (u[j] ~ /^https?:\/\//) { print u[j]; exit }
    }' /etc/apt/sources.list.d/debian.sources)"
fi
if [[ -z "$mirror" && -r /etc/apt/sources.list ]]; then
  # one-line format: deb [opts] URI suite components
  mirror="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { if ($i !~ /security/) { print $i; exit } } }' /etc/apt/sources.list)"
fi
if [[ -z "$mirror" ]]; then
  mirror=http://deb.debian.org/debian
  say "no Debian mirror found in /etc/apt; using $mirror"
fi
mirror="${mirror%/}"

arch="$(dpkg --print-architecture)"
rm -rf "$APTDIR"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$arch" "$KEYRING" "$mirror" "$SUITE" >"$APTDIR/sources.list"

APT=(apt-get -q
  -o "Dir::Etc::SourceList=$APTDIR/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::Cache=$APTDIR/cache"
  -o "Acquire::Languages=none"
  -o "APT::Update::Error-Mode=any"
  # The files live in a root-owned dir the _apt user cannot write; skip the sandbox
  # (silences "Download is performed unsandboxed as root").
  -o "APT::Sandbox::User=$(id -un)"
)
LOG="$STACK/fetch.log"
: >"$LOG"

started=$SECONDS
say "fetching Debian $SUITE index from $mirror ($arch)"
if ! "${APT[@]}" update >>"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  die "apt-get update of $mirror $SUITE failed (full log: $LOG)"
fi

say "downloading ${PACKAGES[*]}"
if ! (cd "$APTDIR/debs" && "${APT[@]}" download "${PACKAGES[@]}") >>"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  die "apt-get download ${PACKAGES[*]} failed (full log: $LOG)"
fi
for p in "${PACKAGES[@]}"; do
  compgen -G "$APTDIR/debs/${p}_*.deb" >/dev/null || die "download of $p produced no .deb (full log: $LOG)"
done

say "unpacking into .stack/root"
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
versions=()
for deb in "$APTDIR"/debs/*.deb; do
  dpkg -x "$deb" "$DEST.tmp" || die "dpkg -x $deb failed"
  versions+=("$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)")
done
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
rm -rf "$APTDIR/debs" "$APTDIR/cache"   # ~85 MB of .debs, no longer needed

for b in "${BINS[@]}"; do
  [[ -x "$DEST/$b" ]] || die "${b##*/} is not in the unpacked packages (expected $DEST/$b)"
done
for t in "${AM_TEMPLATES[@]}"; do
  [[ -f "$DEST$AM_TEMPLATE_DIR/$t" ]] || die "the alertmanager package has no $AM_TEMPLATE_DIR/$t"
done
ensure_am_templates

# --- verify every binary runs ---------------------------------------------------------------
say "verifying binaries"
for b in "${BINS[@]}"; do
  if ! out="$("$DEST/$b" --version 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "${b##*/} --version failed"
  fi
  v="$(printf '%s\n' "$out" | sed -n 's/.*version \([^ ]*\).*/\1/p' | head -n 1)"
  printf 'stack:   %-24s %s\n' "${b##*/}" "$v"
done

{ stamp_text; printf '%s\n' "${versions[@]}"; } >"$STAMP"
say "ready in $((SECONDS - started))s: ${versions[*]}"
