#!/usr/bin/env bash
# Build Vigil's OpenTelemetry Collector from upstream modules: the OpenTelemetry Collector
# Builder (ocb) reads collector/builder-config.yaml, generates main.go/components.go/go.mod
# and compiles them. Result: .stack/otelcol/vigil-otelcol (a symlink to the binary of this
# manifest), which the end-to-end tests, `npm run stack` and the benchmarks run with the
# repository's collector-config.yaml.
#
# Idempotent: the binary is named after a hash of the manifest and the ocb version; a second run
# with it in place exits at once ("collector: cached"). Go's module cache (GOMODCACHE) and build
# cache (GOCACHE) make a rebuild after a manifest change fast; docs/stack.md has cold and warm times.
#
# Needs Go (>= 1.24) and the Go module proxy (GOPROXY). Environment:
#   VIGIL_COLLECTOR_REBUILD=1  build again even when the binary for this manifest exists
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/collector/builder-config.yaml"
OUT="$ROOT/.stack/otelcol"
# ocb is released with collector core; keep it at the manifest's core version.
OCB_VERSION=v0.165.0
OCB="$OUT/bin/ocb-$OCB_VERSION"
NAME=vigil-otelcol
LINK="$OUT/$NAME"

say() { printf 'collector: %s\n' "$*"; }
die() { printf 'collector: ERROR: %s\n' "$*" >&2; exit 1; }

[[ -r "$MANIFEST" ]] || die "$MANIFEST is missing"
# Go lives in /usr/local/go on these machines, not always on PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi
key="$( { cat "$MANIFEST"; printf 'ocb=%s\n' "$OCB_VERSION"; } | sha256sum | cut -c1-16)"
BIN="$OUT/$NAME-$key"

is_cached() { [[ "${VIGIL_COLLECTOR_REBUILD:-}" != 1 && -x "$BIN" && "$(readlink "$LINK" 2>/dev/null)" == "${BIN##*/}" ]]; }

if is_cached; then say "cached ($NAME-$key)"; exit 0; fi

mkdir -p "$OUT"
# Serialise concurrent runs (two test runs started at once); re-check after the wait.
exec 9>"$OUT/.lock"
flock 9
if is_cached; then say "cached ($NAME-$key)"; exit 0; fi

command -v go >/dev/null || die "Go (>= 1.24) is required to build the Collector: https://go.dev/doc/install or apt-get install golang"
started=$SECONDS
say "$(go version); GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

if [[ ! -x "$OCB" ]]; then
  say "installing ocb $OCB_VERSION (go install go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION)"
  mkdir -p "$OUT/bin"
  GOBIN="$OUT/bin" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" \
    || die "go install of the Collector Builder $OCB_VERSION failed"
  mv "$OUT/bin/builder" "$OCB"
  say "ocb ready in $((SECONDS - started))s"
fi

LOG="$OUT/build.log"
say "building $NAME from collector/builder-config.yaml (generate, go mod tidy, go build; log: ${LOG#"$ROOT"/})"
rm -rf "$OUT/build"
# ocb resolves dist.output_path against the directory it runs in: the repository root.
# Its steps ("Sources created", "Getting go modules", "Compiling", "Compiled") are shown as they
# come; everything (go's downloads too) goes to the log.
if ! (cd "$ROOT" && "$OCB" --config "$MANIFEST" 2>&1) | tee "$LOG" \
  | awk -F'\t' '$2 ~ /^(INFO|WARN|ERROR)$/ { printf "collector:   %s %s\n", $2, $4; fflush() }'; then
  tail -n 40 "$LOG" >&2
  die "ocb failed (full log: $LOG)"
fi
[[ -x "$OUT/build/$NAME" ]] || die "ocb finished but $OUT/build/$NAME is missing (log: $LOG)"

mv "$OUT/build/$NAME" "$BIN.tmp"   # the generated sources stay in build/ to look at
mv "$BIN.tmp" "$BIN"
ln -sfn "${BIN##*/}" "$LINK"
# Binaries of earlier manifests (~100 MB each) are no longer used by anything here.
find "$OUT" -maxdepth 1 -name "$NAME-*" ! -name "${BIN##*/}" -type f -delete

say "verifying: $("$BIN" --version)"
"$BIN" components >"$OUT/components.yaml" || die "$BIN components failed"
say "ready in $((SECONDS - started))s: ${BIN#"$ROOT"/}"
