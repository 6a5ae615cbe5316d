#!/usr/bin/env bash
# Static checks of everything under deploy/ and compose.yaml (no Docker daemon needed):
#   - promtool: Prometheus config, alert rules, rule unit tests, the metrics exposition and
#     the PromQL of every Grafana dashboard query;
#   - every metric named in the rules and the Grafana dashboard is defined (shared/metrics.py
#     and each service's services/<service>/metrics.py);
#   - compose.yaml against the Compose JSON schema (and `docker compose config` if it works);
#   - every JSON/YAML file under deploy/ parses; the config YAML loads with Vigil's own loaders;
#   - the Kubernetes manifests against Kubernetes' JSON schemas, offline: the schemas shipped in
#     the kubernetes-validate PyPI package (a dev dependency), and KEDA's ScaledObjects against
#     the schema shipped in the @kubernetes-models/keda npm package (installed on first use).
# Installs promtool with apt (Debian's `prometheus` package) or, without apt, from the release
# tarball into a cache folder. Needs the project's .venv (created by `make` if missing).
#   bash deploy/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
PROM_VERSION=${PROM_VERSION:-2.55.1}
K8S_VERSION=${K8S_VERSION:-1.30.0}            # the oldest Kubernetes the manifests must suit
KEDA_MODELS_VERSION=${KEDA_MODELS_VERSION:-2.0.0}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vigil-deploy
start=$SECONDS

step() { printf '== %s\n' "$*"; }
fail() { printf 'deploy/check.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
if [[ ! -x $PY ]]; then
    step "creating .venv (make .venv/.installed)"
    make --no-print-directory .venv/.installed >/dev/null
fi

install_promtool() {
    if command -v apt-get >/dev/null 2>&1; then
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        step "installing promtool: apt-get install prometheus"
        if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
            "${sudo[@]}" apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
                --no-install-recommends prometheus >/dev/null
        fi
        return
    fi
    step "installing promtool $PROM_VERSION from the release tarball into $CACHE"
    local name="prometheus-$PROM_VERSION.linux-amd64"
    mkdir -p "$CACHE"
    curl -fsSL "https://github.com/prometheus/prometheus/releases/download/v$PROM_VERSION/$name.tar.gz" \
        | tar -xz -C "$CACHE" "$name/promtool"
    ln -sf "$CACHE/$name/promtool" "$CACHE/promtool"
}

PATH=$CACHE:$PATH
command -v promtool >/dev/null 2>&1 || install_promtool
command -v promtool >/dev/null 2>&1 || fail "promtool not found after installing it"

# --- Prometheus ----------------------------------------------------------------------------
step "promtool check config / rules / test rules"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/rules.yml
promtool test rules deploy/prometheus/rules.test.yml

# The exposition of each service: the shared metrics plus whatever the service's own modules
# register on import; "app" is every service at once, as `vigil up` and each `vigil SERVICE`
# process run them. promtool also lints names, units and help texts.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for service in poller classifier notifier app; do
    "$PY" - "$service" >"$tmp/$service.prom" <<'EOF'
import importlib, sys
import shared.metrics  # noqa: F401  (the metrics every process exports)
importlib.import_module("services.runner" if sys.argv[1] == "app" else f"services.{sys.argv[1]}.service")
from prometheus_client import generate_latest
sys.stdout.write(generate_latest().decode())
EOF
    step "promtool check metrics ($service: $(grep -c '^# TYPE vigil_' "$tmp/$service.prom") vigil metrics)"
    promtool check metrics <"$tmp/$service.prom"
done

# --- Compose, Grafana, Kubernetes, config --------------------------------------------------
step "compose schema, JSON/YAML under deploy/, metric names, config loaders"
"$PY" - "$tmp/app.prom" <<'EOF'
import json, re, sys
from pathlib import Path

import jsonschema, yaml

errors: list[str] = []

# compose.yaml against the Compose specification's JSON schema.
compose = yaml.safe_load(Path("compose.yaml").read_text())
schema = json.loads(Path("deploy/schema/compose-spec.json").read_text())
for error in jsonschema.Draft7Validator(schema).iter_errors(compose):
    path = "/".join(str(p) for p in error.absolute_path)
    errors.append(f"compose.yaml: {path}: {error.message}")
for name, service in compose.get("services", {}).items():
    for mount in service.get("volumes", []):
        host = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
        if host.startswith("./") and not Path(host).exists():
            errors.append(f"compose.yaml: {name}: mounts missing path {host}")
    for env_file in service.get("env_file", []):
        if isinstance(env_file, dict) and env_file.get("required", True) and not Path(env_file["path"]).exists():
            errors.append(f"compose.yaml: {name}: missing env file {env_file['path']}")

# Every JSON and YAML file under deploy/ parses.
parsed = 0
for path in sorted(Path("deploy").rglob("*")):
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in (".yml", ".yaml"):
            list(yaml.safe_load_all(path.read_text()))
        else:
            continue
        parsed += 1
    except (ValueError, yaml.YAMLError) as error:
        errors.append(f"{path}: {error}".replace("\n", " "))

# Kubernetes: every document has apiVersion, kind and a name; kustomization lists real files.
k8s = Path("deploy/k8s")
for path in sorted(k8s.glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if path.name == "kustomization.yaml":
            for resource in doc.get("resources", []):
                if not (k8s / resource).exists():
                    errors.append(f"{path}: resource {resource} does not exist")
        elif doc and not (doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name")):
            errors.append(f"{path}: a document lacks apiVersion, kind or metadata.name")

# Grafana dashboard: unique panel ids, every target has an expression.
dashboard = json.loads(Path("deploy/grafana/dashboards/vigil.json").read_text())
ids = [p["id"] for p in dashboard["panels"]]
if len(ids) != len(set(ids)):
    errors.append("vigil.json: duplicate panel ids")
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
if not all(exprs):
    errors.append("vigil.json: a target has no expression")
# Each query as a recording rule, so promtool parses its PromQL (checked after this script).
rules = [{"record": f"vigil_dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
         for n, expr in enumerate(exprs)]
(Path(sys.argv[1]).parent / "dashboard-rules.yml").write_text(
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

# Metric names used by the rules and the dashboard exist in the exposition.
exposed = set(re.findall(r"^# TYPE (\S+) ", Path(sys.argv[1]).read_text(), re.M))
used_text = Path("deploy/prometheus/rules.yml").read_text() + "\n".join(exprs)
for name in sorted(set(re.findall(r"\bvigil_[a-z0-9_]+", used_text))):
    base = re.sub(r"_(bucket|count|sum|created)$", "", name)
    if name not in exposed and base not in exposed:
        errors.append(f"unknown metric {name} (not in shared/metrics.py nor services/*/metrics.py)")

# The sources and subscriptions YAML load with Vigil's own validation (no network).
from services.notifier.subscriptions import load_subscriptions
from services.poller.sources import load_sources
from shared.settings import ConfigError

def check_config(label, sources_text, subscriptions_text, tmpdir=Path(sys.argv[1]).parent):
    try:
        (tmpdir / "sources.yaml").write_text(sources_text)
        (tmpdir / "subscriptions.yaml").write_text(subscriptions_text)
        load_sources(tmpdir / "sources.yaml")
        load_subscriptions(tmpdir / "subscriptions.yaml")
    except ConfigError as error:
        errors.append(f"{label}: {error}")

check_config("deploy/config", Path("deploy/config/sources.yaml").read_text(),
             Path("deploy/config/subscriptions.yaml").read_text())
for doc in yaml.safe_load_all(Path("deploy/k8s/configmap.yaml").read_text()):
    if doc["metadata"]["name"] == "vigil-config":
        check_config("deploy/k8s/configmap.yaml", doc["data"]["sources.yaml"], doc["data"]["subscriptions.yaml"])

# Env files: KEY=VALUE lines with VIGIL_ keys.
for path in ("deploy/vigil.defaults.env", "deploy/vigil.env.example"):
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#") and not re.match(r"^VIGIL_[A-Z0-9_]+=", line):
            errors.append(f"{path}:{number}: not a VIGIL_ setting: {line}")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"  SUCCESS: compose.yaml matches the Compose schema; {parsed} JSON/YAML files parse; "
      f"{len(exprs)} dashboard queries; config files load")
EOF

step "Kubernetes manifests against the Kubernetes $K8S_VERSION schemas (strict, offline)"
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    step "installing node and npm: apt-get install nodejs npm"
    sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq nodejs npm >/dev/null
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || fail "node and npm are needed to check KEDA's ScaledObjects"
if [[ ! -d $CACHE/npm/node_modules/@kubernetes-models/keda ]]; then
    step "installing @kubernetes-models/keda@$KEDA_MODELS_VERSION into $CACHE/npm"
    npm install --prefix "$CACHE/npm" --no-audit --no-fund --silent \
        "@kubernetes-models/keda@$KEDA_MODELS_VERSION" >/dev/null
fi
"$PY" - "$K8S_VERSION" "$tmp" <<'PYTHON'
import json, sys
from pathlib import Path

import kubernetes_validate, yaml

version, tmp = sys.argv[1], Path(sys.argv[2])
errors, checked, custom = [], 0, []
for path in sorted(Path("deploy/k8s").rglob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") == "Kustomization":
            continue
        where = f"{path}: {doc['kind']} {doc.get('metadata', {}).get('name')}"
        if doc["apiVersion"].startswith("keda.sh/"):
            custom.append({"where": where, "doc": doc})
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{where}: {error.message}")

# The KEDA overlay removes the fixed replica count of exactly what its ScaledObjects scale.
overlay = yaml.safe_load(Path("deploy/k8s/keda/kustomization.yaml").read_text())
base = {(d["kind"], d["metadata"]["name"]): d for p in Path("deploy/k8s").glob("*.yaml")
        for d in yaml.safe_load_all(p.read_text()) if d and "metadata" in d}
scaled = {c["doc"]["spec"]["scaleTargetRef"]["name"] for c in custom}
patched = {p["target"]["name"] for p in overlay["patches"]}
if scaled != patched:
    errors.append(f"deploy/k8s/keda: ScaledObjects scale {sorted(scaled)}, patches cover {sorted(patched)}")
for name in scaled:
    if "replicas" not in base.get(("Deployment", name), {}).get("spec", {}):
        errors.append(f"deploy/k8s/keda: no Deployment {name} with spec.replicas to remove")

(tmp / "keda.json").write_text(json.dumps(custom))
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"  SUCCESS: {checked} Kubernetes objects match the {version} schemas")
PYTHON
# Run from the npm prefix, where node resolves the package (its exports are ESM only).
cat >"$CACHE/npm/validate-keda.mjs" <<'NODE'
import { readFileSync } from "node:fs";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const { where, doc } of objects) {
  try { new ScaledObject(doc).validate(); }
  catch (error) { failed += 1; console.error(`${where}: ${error.message}`); }
}
if (failed) process.exit(1);
console.log(`  SUCCESS: ${objects.length} ScaledObjects match KEDA's schema`);
NODE
node "$CACHE/npm/validate-keda.mjs" "$tmp/keda.json"

step "promtool check rules: the dashboard's queries parse"
promtool check rules "$tmp/dashboard-rules.yml"

if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    step "docker compose config -q"
    docker compose -f compose.yaml config -q
else
    step "docker compose config: skipped (no docker compose here)"
fi

step "deploy/check.sh passed in $((SECONDS - start)) s"
