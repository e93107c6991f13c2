#!/usr/bin/env bash
# Prepare the lifeboat integration-test rig (DESIGN.md §6).
#
#  1. Installs Debian's etcd-server, etcd-client, age, zstd and openssl when a
#     needed command is missing (etcd 3.4 comes from Debian).
#  2. Builds each Go harness module under test/rig/go/ (etcd 3.5, MinIO + mc,
#     the Kubernetes control plane + kubectl, kwok + kwokctl, the Prometheus
#     Pushgateway) into
#     ${LIFEBOAT_RIG_CACHE:-$HOME/.cache/lifeboat-rig}/<name>-<version>-<hash>/bin/,
#     skipping harnesses that are already cached.
#  3. Writes ${cache}/rig.json: absolute paths of every binary, read by
#     test/rig/components.ts and test/rig/kube.ts (the single source of truth
#     for binary locations).
#
# Idempotent and non-interactive; a warm run only hashes a few files.
# With --packages-only, only step 1 (used by `npm run demo`).
set -euo pipefail

RIG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${LIFEBOAT_RIG_CACHE:-$HOME/.cache/lifeboat-rig}"
# Bump when the build flags below change, so cached binaries are rebuilt.
BUILD_RECIPE="v1 CGO_ENABLED=0 -trimpath -ldflags=-s -w"

log() { printf 'rig: %s\n' "$*" >&2; }
die() { printf 'rig: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

run_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "need root (or passwordless sudo) to run: $*"
  fi
}

# ---------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------
ETCD34_BIN=/usr/bin/etcd
ETCD34_CTL=/usr/bin/etcdctl

ensure_debian_packages() {
  local missing=()
  [ -x "$ETCD34_BIN" ] || missing+=(etcd-server)
  [ -x "$ETCD34_CTL" ] || missing+=(etcd-client)
  command -v age >/dev/null 2>&1 || missing+=(age)
  command -v zstd >/dev/null 2>&1 || missing+=(zstd)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # An independent OpenMetrics parser for the tests of --metrics-file.
  /usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
  [ "${#missing[@]}" -eq 0 ] && return 0

  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get; install them by hand"
  log "installing Debian packages: ${missing[*]}"
  local t0; t0="$(now)"

  # Keep the etcd-server postinst from starting a daemon: a policy-rc.d that
  # denies every service action (honoured by invoke-rc.d and deb-systemd-invoke).
  local created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    run_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    created_policy=1
  fi
  local etcd_pids_before; etcd_pids_before=" $(pidof "$ETCD34_BIN" 2>/dev/null || true) "

  local rc=0
  run_root apt-get update -qq || rc=$?
  if [ "$rc" -eq 0 ]; then
    run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2 || rc=$?
  fi
  [ "$created_policy" -eq 1 ] && run_root rm -f /usr/sbin/policy-rc.d

  # Whatever happened, leave no packaged etcd daemon behind (it would hold 2379).
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    run_root systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
  local pid
  for pid in $(pidof "$ETCD34_BIN" 2>/dev/null || true); do
    case "$etcd_pids_before" in
      *" $pid "*) ;; # was running before we started; not ours
      *) log "stopping etcd daemon started by the package (pid $pid)"; run_root kill "$pid" || true ;;
    esac
  done

  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing ${missing[*]}"
  log "installed ${missing[*]} ($(elapsed "$t0"))"
}

check_etcd34() {
  local v
  v="$("$ETCD34_BIN" --version 2>/dev/null | awk '/^etcd Version:/ { print $3 }')"
  case "$v" in
    3.4.*) ;;
    *) die "$ETCD34_BIN is etcd '${v:-unknown}', the rig needs 3.4.x (Debian 12's etcd-server)" ;;
  esac
}

# ---------------------------------------------------------------------------
# 2. Go harnesses
# ---------------------------------------------------------------------------

# Version of a required module, read straight from a harness go.mod (no go
# invocation, so a warm run needs neither Go nor the module cache).
mod_version() { # <harness dir> <module path>
  awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m && $3 ~ /^v/) { print $3; exit }' "$1/go.mod"
}

harness_hash() { # <harness dir> <build specs>...
  (
    cd "$1"; shift
    printf '%s\n' "$BUILD_RECIPE" "$@"
    find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs sha256sum
  ) | sha256sum | cut -c1-12
}

find_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build the rig (go.mod asks for $(awk '$1=="go"{print $2}' "$RIG_DIR/go/etcd35/go.mod")+)"
}

# build_harness <harness> <name-version> <binary=package[|extra ldflags]>...
# Sets RESULT_DIR to the bin/ directory holding the binaries.
# Optional environment, for this call only:
#   BUILD_TAGS=a,b            go build -tags
#   BUILD_DATE_MODULE=path    replace @BUILD_DATE@ in the ldflags with that module's
#                             publication time (from the module proxy's .info, so
#                             reproducible); resolved only when actually building.
build_harness() {
  local harness="$1" label="$2"; shift 2
  local dir="$RIG_DIR/go/$harness"
  local tags="${BUILD_TAGS:-}" date_module="${BUILD_DATE_MODULE:-}"
  [ -f "$dir/go.mod" ] || die "no harness at $dir"
  # Tags take part in the hash only when set, so existing harness caches stay valid.
  local final; final="$CACHE/$label-$(harness_hash "$dir" "$@" ${tags:+"tags=$tags"})"
  RESULT_DIR="$final/bin"

  local spec ok=1
  for spec in "$@"; do [ -x "$final/bin/${spec%%=*}" ] || ok=0; done
  if [ "$ok" -eq 1 ]; then
    log "cached $harness: $final"
    return 0
  fi

  find_go
  mkdir -p "$CACHE"
  local tmp; tmp="$(mktemp -d "$CACHE/.$label.tmp.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: remove this temp dir if we fail
  trap "rm -rf '$tmp'" EXIT
  mkdir "$tmp/bin"
  log "building $harness ($label) with $(go env GOVERSION) -> $final"
  local t0 t1 build_date=""; t0="$(now)"
  if [ -n "$date_module" ]; then
    build_date="$(cd "$dir" && env GOTOOLCHAIN=local GOFLAGS="-mod=readonly" \
      go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$date_module")" \
      || die "cannot read the publication time of $date_module"
  fi
  for spec in "$@"; do
    local bin="${spec%%=*}" pkg="${spec#*=}" extra=""
    case "$pkg" in *"|"*) extra="${pkg#*|}"; pkg="${pkg%%|*}" ;; esac
    extra="${extra//@BUILD_DATE@/$build_date}"
    t1="$(now)"
    log "  go build $pkg -> $bin${tags:+ (tags $tags)}"
    (
      cd "$dir"
      env GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $extra" -o "$tmp/bin/$bin" "$pkg"
    ) || die "building $bin from $harness failed"
    log "  built $bin ($(elapsed "$t1"))"
  done
  # Publish atomically; a concurrent run may have won the race, which is fine.
  rm -rf "$final"
  if ! mv -T "$tmp" "$final" 2>/dev/null; then
    [ -d "$final/bin" ] || die "could not move $tmp to $final"
    rm -rf "$tmp"
  fi
  trap - EXIT
  log "built $harness in $(elapsed "$t0")"
}

# MinIO and mc report DEVELOPMENT.GOGET unless told their version; derive it
# from the pseudo-version (vX.Y.Z-yyyymmddhhmmss-commit12), as their Makefile would.
minio_ldflags() { # <cmd package> <pseudo-version>
  local stamp="${2%-*}"; stamp="${stamp##*-}"
  local commit="${2##*-}"
  local y="${stamp:0:4}" mo="${stamp:4:2}" d="${stamp:6:2}" h="${stamp:8:2}" mi="${stamp:10:2}" s="${stamp:12:2}"
  printf -- '-X %s.Version=%s-%s-%sT%s:%s:%sZ -X %s.ReleaseTag=DEVELOPMENT.%s-%s-%sT%s-%s-%sZ -X %s.CommitID=%s -X %s.ShortCommitID=%s -X %s.CopyrightYear=%s' \
    "$1" "$y" "$mo" "$d" "$h" "$mi" "$s" "$1" "$y" "$mo" "$d" "$h" "$mi" "$s" "$1" "$commit" "$1" "$commit" "$1" "$y"
}

# Kubernetes binaries report v0.0.0-master+$Format:%H$ unless told their version
# (and kwokctl parses `kube-apiserver --version`): stamp what hack/lib/version.sh
# would, into both version packages. The module zip carries no commit, so
# gitCommit stays empty; the tree is the released module, verified by go.sum.
kube_ldflags() { # <vX.Y.Z>
  local v="$1" rest major minor pkg out=""
  rest="${v#v}"; major="${rest%%.*}"; rest="${rest#*.}"; minor="${rest%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+="-X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    out+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=@BUILD_DATE@ "
  done
  printf '%s' "${out% }"
}

# kwok's defaults (consts.Version, consts.KubeVersion) are what its release
# scripts stamp; set them from the harness so they match what we build.
kwok_ldflags() { # <kwok vX.Y.Z> <kubernetes vX.Y.Z>
  printf -- '-X sigs.k8s.io/kwok/pkg/consts.Version=%s -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=%s' "${1#v}" "${2#v}"
}

# The Pushgateway reports its version through prometheus/common/version, as
# promu stamps it for releases; the module zip carries no commit or branch.
pushgateway_ldflags() { # <vX.Y.Z>
  local pkg=github.com/prometheus/common/version
  printf -- '-X %s.Version=%s -X %s.Revision= -X %s.Branch= -X %s.BuildUser= -X %s.BuildDate=@BUILD_DATE@' \
    "$pkg" "${1#v}" "$pkg" "$pkg" "$pkg" "$pkg"
}

# ---------------------------------------------------------------------------
# 3. rig.json
# ---------------------------------------------------------------------------
json_str() { # minimal JSON string escaping (paths: backslash and quote only)
  local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"
}

main() {
  local t0; t0="$(now)"
  ensure_debian_packages
  check_etcd34

  local etcd_version minio_version mc_version kube_version kwok_version pushgateway_version
  etcd_version="$(mod_version "$RIG_DIR/go/etcd35" go.etcd.io/etcd/server/v3)"
  minio_version="$(mod_version "$RIG_DIR/go/minio" github.com/minio/minio)"
  mc_version="$(mod_version "$RIG_DIR/go/minio" github.com/minio/mc)"
  kube_version="$(mod_version "$RIG_DIR/go/kubernetes" k8s.io/kubernetes)"
  kwok_version="$(mod_version "$RIG_DIR/go/kwok" sigs.k8s.io/kwok)"
  pushgateway_version="$(mod_version "$RIG_DIR/go/pushgateway" github.com/prometheus/pushgateway)"
  [ -n "$etcd_version" ] && [ -n "$minio_version" ] && [ -n "$mc_version" ] && [ -n "$kube_version" ] && [ -n "$kwok_version" ] \
    && [ -n "$pushgateway_version" ] \
    || die "cannot read harness versions from go.mod"

  build_harness etcd35 "etcd-${etcd_version#v}" \
    etcd=./cmd/etcd etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3
  local etcd35="$RESULT_DIR"
  build_harness minio "minio-$minio_version" \
    "minio=github.com/minio/minio|$(minio_ldflags github.com/minio/minio/cmd "$minio_version")" \
    "mc=github.com/minio/mc|$(minio_ldflags github.com/minio/mc/cmd "$mc_version")"
  local minio="$RESULT_DIR"
  # Tags as Kubernetes' own build (hack/lib/golang.sh) uses for release binaries.
  local kl; kl="$(kube_ldflags "$kube_version")"
  BUILD_TAGS=selinux,notest,grpcnotrace BUILD_DATE_MODULE=k8s.io/kubernetes build_harness kubernetes "kubernetes-${kube_version#v}" \
    "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver|$kl" \
    "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager|$kl" \
    "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler|$kl" \
    "kubectl=k8s.io/kubernetes/cmd/kubectl|$kl"
  local kube="$RESULT_DIR"
  local wl; wl="$(kwok_ldflags "$kwok_version" "$kube_version")"
  build_harness kwok "kwok-${kwok_version#v}" \
    "kwok=sigs.k8s.io/kwok/cmd/kwok|$wl" "kwokctl=sigs.k8s.io/kwok/cmd/kwokctl|$wl"
  local kwok="$RESULT_DIR"
  BUILD_DATE_MODULE=github.com/prometheus/pushgateway build_harness pushgateway "pushgateway-${pushgateway_version#v}" \
    "pushgateway=github.com/prometheus/pushgateway|$(pushgateway_ldflags "$pushgateway_version")"
  local pushgateway="$RESULT_DIR"

  mkdir -p "$CACHE"
  local out="$CACHE/rig.json" tmp
  tmp="$(mktemp "$CACHE/.rig.json.XXXXXX")"
  cat >"$tmp" <<EOF
{
  "etcd34": { "etcd": $(json_str "$ETCD34_BIN"), "etcdctl": $(json_str "$ETCD34_CTL") },
  "etcd35": { "etcd": $(json_str "$etcd35/etcd"), "etcdutl": $(json_str "$etcd35/etcdutl"), "etcdctl": $(json_str "$etcd35/etcdctl") },
  "minio": { "minio": $(json_str "$minio/minio"), "mc": $(json_str "$minio/mc") },
  "kube": { "apiserver": $(json_str "$kube/kube-apiserver"), "controllerManager": $(json_str "$kube/kube-controller-manager"), "scheduler": $(json_str "$kube/kube-scheduler"), "kubectl": $(json_str "$kube/kubectl"), "version": $(json_str "$kube_version") },
  "kwok": { "kwok": $(json_str "$kwok/kwok"), "kwokctl": $(json_str "$kwok/kwokctl"), "version": $(json_str "$kwok_version") },
  "pushgateway": { "pushgateway": $(json_str "$pushgateway/pushgateway"), "version": $(json_str "$pushgateway_version") }
}
EOF
  mv -f "$tmp" "$out"
  log "ready in $(elapsed "$t0"): $out"
}

if [ "${1:-}" = "--packages-only" ]; then
  # What `npm run demo` needs: Debian's etcd, etcdctl, age, zstd.
  ensure_debian_packages
  exit 0
fi
main "$@"
