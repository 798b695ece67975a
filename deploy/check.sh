#!/usr/bin/env bash
# Static check of deploy/kubernetes (no cluster needed, nothing is applied):
#  - every *.yaml / *.yml file parses (PyYAML, as /usr/bin/python3 has it);
#  - every document has apiVersion, kind and metadata.name, and every namespaced object is in
#    namespace "ward"; no object is defined twice;
#  - each directory's kustomization.yaml lists exactly the YAML files in that directory, and
#    every YAML file is in a directory that has one;
#  - each ConfigMap key ending in .toml parses as TOML (placeholder values are strings);
#  - selectors of Deployments, Services and PodDisruptionBudgets match pod labels, and every
#    ConfigMap, Secret and claim a pod mounts is defined here;
#  - if kubectl is installed, `kubectl kustomize` renders each kustomization (offline).
# It says nothing about whether any of it works on a cluster.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir="$here/kubernetes"
py=/usr/bin/python3

if ! "$py" -c 'import yaml' 2>/dev/null; then
  echo "check.sh: $py cannot import yaml; install python3-yaml" >&2
  exit 2
fi

"$py" - "$dir" <<'PY'
import os, sys, tomllib, yaml

root = sys.argv[1]
errors = []
def err(msg): errors.append(msg)

CLUSTER_SCOPED = {"Namespace", "RuntimeClass"}
yaml_files, objects = [], []
for d, subdirs, files in os.walk(root):
    subdirs.sort()
    for f in sorted(files):
        if f.endswith((".yaml", ".yml")):
            yaml_files.append(os.path.join(d, f))

for path in yaml_files:
    rel = os.path.relpath(path, root)
    try:
        with open(path) as fh:
            docs = [doc for doc in yaml.safe_load_all(fh) if doc is not None]
    except yaml.YAMLError as e:
        err(f"{rel}: does not parse: {e}")
        continue
    if not docs:
        err(f"{rel}: no documents")
    for i, doc in enumerate(docs):
        where = f"{rel} document {i + 1}"
        if not isinstance(doc, dict):
            err(f"{where}: not a mapping"); continue
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                err(f"{where}: no {key}")
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            err(f"{where}: no metadata.name"); continue
        kind = doc.get("kind")
        if kind == "Kustomization":
            continue
        ns = meta.get("namespace")
        if kind in CLUSTER_SCOPED and ns is not None:
            err(f"{where}: {kind} is cluster-scoped but has namespace {ns!r}")
        if kind not in CLUSTER_SCOPED and ns != "ward":
            err(f"{where}: {kind} {meta['name']} is not in namespace ward")
        objects.append((where, doc))

# Each kustomization lists exactly the YAML files of its own directory.
dirs = {os.path.dirname(p) for p in yaml_files}
for d in sorted(dirs):
    rel = os.path.relpath(d, root)
    present = {f for f in os.listdir(d) if f.endswith((".yaml", ".yml"))} - {"kustomization.yaml"}
    kpath = os.path.join(d, "kustomization.yaml")
    if not os.path.exists(kpath):
        err(f"{rel}/: YAML files but no kustomization.yaml: {sorted(present)}"); continue
    with open(kpath) as fh:
        k = yaml.safe_load(fh) or {}
    listed = k.get("resources") or []
    files = [r for r in listed if not os.path.isdir(os.path.join(d, r))]
    for r in listed:
        if os.path.isdir(os.path.join(d, r)) and not os.path.exists(os.path.join(d, r, "kustomization.yaml")):
            err(f"{rel}/kustomization.yaml: {r} is a directory without a kustomization.yaml")
    if len(files) != len(set(files)):
        err(f"{rel}/kustomization.yaml: a file is listed twice")
    for f in sorted(set(files) - present):
        err(f"{rel}/kustomization.yaml lists {f}, which does not exist")
    for f in sorted(present - set(files)):
        err(f"{rel}/kustomization.yaml does not list {f}")

# No object twice.
seen = {}
for where, doc in objects:
    key = (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
    if key in seen:
        err(f"{where}: {key[0]} {key[2]} is also defined in {seen[key]}")
    seen[key] = where

# Embedded TOML.
for where, doc in objects:
    if doc["kind"] == "ConfigMap":
        for name, text in (doc.get("data") or {}).items():
            if name.endswith(".toml"):
                try:
                    tomllib.loads(text)
                except tomllib.TOMLDecodeError as e:
                    err(f"{where}: data.{name} is not TOML: {e}")

# Selectors and references.
def by_kind(kind):
    return {d["metadata"]["name"]: d for _, d in objects if d["kind"] == kind}
configmaps, secrets, claims = by_kind("ConfigMap"), by_kind("Secret"), by_kind("PersistentVolumeClaim")
pod_labels = []
for where, doc in objects:
    if doc["kind"] != "Deployment":
        continue
    spec = doc.get("spec", {})
    tmpl = spec.get("template", {})
    labels = tmpl.get("metadata", {}).get("labels", {}) or {}
    pod_labels.append(labels)
    sel = spec.get("selector", {}).get("matchLabels", {}) or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        err(f"{where}: selector {sel} does not match the pod labels {labels}")
    pod = tmpl.get("spec", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                err(f"{where}: container {c['name']} mounts undefined volume {m['name']}")
            elif "subPath" in m and "configMap" in volumes[m["name"]]:
                cm = configmaps.get(volumes[m["name"]]["configMap"]["name"], {})
                if m["subPath"] not in (cm.get("data") or {}) and m["subPath"] not in (cm.get("binaryData") or {}):
                    err(f"{where}: subPath {m['subPath']} is not a key of ConfigMap {volumes[m['name']]['configMap']['name']}")
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            err(f"{where}: ConfigMap {v['configMap']['name']} is not defined here")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            err(f"{where}: Secret {v['secret']['secretName']} is not defined here")
        if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in claims:
            err(f"{where}: claim {v['persistentVolumeClaim']['claimName']} is not defined here")
for where, doc in objects:
    sel = None
    if doc["kind"] == "Service":
        sel = doc.get("spec", {}).get("selector")
    elif doc["kind"] == "PodDisruptionBudget":
        sel = doc.get("spec", {}).get("selector", {}).get("matchLabels")
    if sel is not None and not any(all(l.get(k) == v for k, v in sel.items()) for l in pod_labels):
        err(f"{where}: selector {sel} matches no pod template here")

for e in errors:
    print("FAIL", e)
if errors:
    sys.exit(1)
print(f"ok: {len(yaml_files)} YAML files, {len(objects)} objects (+ kustomizations) under {os.path.relpath(root)}")
for where, doc in objects:
    print(f"  {doc['apiVersion']:<28} {doc['kind']:<22} {doc['metadata']['name']:<24} {where}")
PY

if command -v kubectl >/dev/null 2>&1; then
  while IFS= read -r k; do
    kdir=$(dirname "$k")
    n=$(kubectl kustomize "$kdir" | "$py" -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(sys.stdin) if d))')
    echo "ok: kubectl kustomize ${kdir#"$here"/} renders $n objects"
  done < <(find "$dir" -name kustomization.yaml | sort)
else
  echo "skipped: kubectl kustomize (kubectl not installed)"
fi
