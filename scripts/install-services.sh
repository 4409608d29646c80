#!/usr/bin/env bash
# The real PostgreSQL and Redis the dependency-check tests run (test/helpers/services.ts starts
# them itself, each on a free 127.0.0.1 port in a temp folder). Installs Debian's `postgresql`
# and `redis-server` when their binaries are missing; silent and quick when they are present.
# Run by `npm test` (npm run services:install) and by .ci/run. Installing needs root and apt-get.
set -euo pipefail

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
have_redis() { command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]]; }

missing=()
have_postgres || missing+=(postgresql)
have_redis || missing+=(redis-server)
((${#missing[@]})) || exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "install-services: ${missing[*]} missing; install them with: apt-get install -y ${missing[*]} (needs root)" >&2
  exit 1
fi
echo "install-services: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
# The packages' own service start-up is not wanted (the tests start their own servers): policy-rc.d says no.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
have_postgres && have_redis || { echo "install-services: ${missing[*]} still missing after apt-get install" >&2; exit 1; }
