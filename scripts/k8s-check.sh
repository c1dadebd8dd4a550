#!/usr/bin/env bash
# Validates deploy/kubernetes beyond what `cargo test` (tests/deploy.rs) checks:
#   1. deploy/kubernetes/prometheusrule.yaml is up to date with deploy/prometheus/alerts.yml;
#   2. `kubectl kustomize` renders the kustomization (offline);
#   3. every rendered resource validates, strictly (unknown fields are errors), against the
#      Kubernetes 1.26 (the oldest supported: mixed-protocol LoadBalancer) and newest schemas
#      bundled in the PyPI package kubernetes-validate, installed into a venv under target/;
#      the Prometheus operator's kinds (ServiceMonitor, PrometheusRule) have no bundled schema
#      and are only parsed;
#   4. the rendered PrometheusRule's spec is alerts.yml, parsed (PyYAML).
# Needs kubectl (any version with `kubectl kustomize`, 1.14 or later; Debian 12: apt-get install
# kubernetes-client), python3 with its venv module, and PyPI (once, for the venv). A missing tool
# is a failure, never a silent skip: PIXELGUARD_SKIP_KUBECTL=1 says explicitly that steps 2-4 are
# not wanted (then the script says so and exits 0 after step 1); .ci/run clears that variable.
# Bounded: pip by 300 s, every other step by 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."

KV_VERSION=1.37.0
venv="target/k8s-check-venv"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/pixelguard-k8s-check.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { echo "FAIL  $*" >&2; echo "k8s-check: $passed passed, 1 failed" >&2; exit 1; }

timeout 60 bash scripts/gen-prometheusrule.sh --check || fail "prometheusrule.yaml is out of date"
ok "prometheusrule.yaml matches deploy/prometheus/alerts.yml"

if ! command -v kubectl >/dev/null; then
    if [ "${PIXELGUARD_SKIP_KUBECTL:-}" = "1" ]; then
        echo "skip  kubectl kustomize and schema validation of deploy/kubernetes (PIXELGUARD_SKIP_KUBECTL=1)"
        echo "k8s-check: $passed passed, 0 failed"
        exit 0
    fi
    fail "kubectl is not installed (Debian 12: apt-get install kubernetes-client);" \
        "set PIXELGUARD_SKIP_KUBECTL=1 to skip rendering and validating the manifests on purpose"
fi
for tool in python3 timeout; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (Debian: apt-get install python3 python3-venv coreutils)"
done
rendered="$scratch/rendered.yaml"
# The pseudonym key is per installation and never committed: render a copy with a throwaway key.
cp -r deploy/kubernetes "$scratch/kustomization"
[ -f "$scratch/kustomization/pseudonym.key" ] || printf '%032x\n' 0 >"$scratch/kustomization/pseudonym.key"
timeout 60 kubectl kustomize "$scratch/kustomization" >"$rendered" || fail "kubectl kustomize deploy/kubernetes"
kubectl_version="$(timeout 60 kubectl version --client 2>/dev/null | grep -o -m1 'v[0-9][0-9.]*' | head -1)" || true
ok "kubectl ${kubectl_version:-(version unknown)} kustomize renders $(grep -c '^kind: ' "$rendered") resources"

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv" || fail "python3 -m venv (Debian: apt-get install python3-venv)"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KV_VERSION" pyyaml || fail "pip install kubernetes-validate"
fi
for k in 1.26.0 "$KV_VERSION"; do
    timeout 60 "$venv/bin/kubernetes-validate" --strict --quiet -k "$k" "$rendered" \
        >"$scratch/validate.out" 2>&1 || { cat "$scratch/validate.out" >&2; fail "schema validation for Kubernetes $k"; }
    # Warnings are expected only for the Prometheus operator's kinds.
    if grep -v -E "Couldn't find schema for kind (ServiceMonitor|PrometheusRule) " "$scratch/validate.out" | grep -q .; then
        cat "$scratch/validate.out" >&2
        fail "unexpected validator output for Kubernetes $k"
    fi
    ok "strict schema validation against Kubernetes $k"
done

timeout 60 "$venv/bin/python" - "$rendered" <<'PY' || fail "rendered resources"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
want = ["ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "PrometheusRule",
        "Secret", "Service", "Service", "ServiceMonitor"]
assert kinds == want, kinds
rule = next(d for d in docs if d["kind"] == "PrometheusRule")
try:
    alerts = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
except FileNotFoundError:
    alerts = {"groups": []}
assert rule["spec"] == alerts, "PrometheusRule spec differs from alerts.yml"
cm = next(d for d in docs if d["kind"] == "ConfigMap")
dep = next(d for d in docs if d["kind"] == "Deployment")
vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
assert vol["configMap"]["name"] == cm["metadata"]["name"], "the Deployment mounts another ConfigMap"
sec = next(d for d in docs if d["kind"] == "Secret")
kvol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v)
assert kvol["secret"]["secretName"] == sec["metadata"]["name"], "the Deployment mounts another Secret"
assert "pseudonym.key" in sec["data"], "the Secret holds pseudonym.key"
assert all(d["metadata"].get("namespace") == "pixelguard" for d in docs if d["kind"] != "Namespace")
print(f"ok    rendered: {', '.join(kinds)}; {len(rule['spec']['groups'])} alert group(s)")
PY
passed=$((passed + 1))
echo "k8s-check: $passed passed, 0 failed"
