"""`hardstack new`: the generated Pulumi project, its CI, and that no value given to it becomes code.

The generated projects are judged for real: each shipped blueprint's project runs one of the ways a user runs the
gate on it (the GitHub workflow's check step, the GitLab job's script, `hardstack check DIR`), all three at once
in a module fixture.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hardstack.blueprints.loader import catalog, load
from hardstack.errors import EXIT_INVALID, EXIT_OK, InvalidInput
from hardstack.stacks import scaffold
from hardstack.stacks.scaffold import (
    TEMPLATE_DIR,
    TEMPLATES,
    UnquotedValue,
    environment,
    new_project,
    python_literal,
    yaml_string,
)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HARDSTACK = BIN / "hardstack"

GENERATED = {
    "Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "requirements.txt", "stack.yaml", ".checkov.yaml",
    ".github/workflows/hardstack.yml", ".gitlab-ci.yml", ".pre-commit-config.yaml", "README.md", ".gitignore",
}

HOSTILE = [
    'quote " and \' and """ and \'\'\'',
    "new\nline: injected\n- item",
    "{{ 7 * 7 }} {% if true %}x{% endif %} {# c #} ${{ secrets.GITHUB_TOKEN }}",
    "') ; import os; os.system('id') #",
    "\\ backslash \\n \\u0041 \t tab \r return",
    "# comment: &anchor *alias !!python/object:os.system [x]",
    "\x85 NEL \u2028 LS \u2029 PS \x7f DEL \x00 NUL \ufeff BOM 😀",
]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HARDSTACK), *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ})


def files_in(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def write_blueprint(path: Path, **fields: Any) -> Path:
    base = {"name": "team-env", "region": "eu-west-1", "description": "A team's environment."}
    path.write_text(yaml.safe_dump({**base, **fields}, allow_unicode=True))
    return path


# --- the generated project passes the gate, the way its CI and its users run it ----------------------------------


def ci_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(tmp / "gh-output")}


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.Popen[str]]]:
    """One project per shipped blueprint, each judged once; the three runs go at the same time."""
    root = tmp_path_factory.mktemp("projects")
    runs: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
    for name in sorted(catalog()):
        project = root / name
        made = run("new", name, str(project))
        assert made.returncode == EXIT_OK, made.stderr
        if name == "llm-inference":  # the GitHub workflow's check step, as CI runs it
            step = gate_step(read_yaml(project / ".github/workflows/hardstack.yml"), "check")
            cmd = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
        elif name == "multi-tenant-gpu":  # the GitLab job's script (without the pip install)
            script = read_yaml(project / ".gitlab-ci.yml")["hardstack"]["script"]
            cmd = ["bash", "-e", "-c", "\n".join(s for s in script if not s.startswith("pip "))]
        else:  # a user, from elsewhere
            cmd = [str(HARDSTACK), "check", str(project), "--format", "json"]
        proc = subprocess.Popen(cmd, cwd=project if cmd[0] == "bash" else REPO, env=ci_env(project),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[name] = (project, proc)
    yield runs
    for _, proc in runs.values():
        if proc.poll() is None:
            proc.kill()


def gate_step(workflow: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in workflow["jobs"]["gate"]["steps"] if s.get("id") == step_id)


@pytest.mark.parametrize("blueprint", sorted(catalog()))
def test_generated_project_passes_the_gate(gate_runs: dict, blueprint: str) -> None:  # type: ignore[type-arg]
    """`hardstack new BLUEPRINT DIR`, then the gate on DIR passes, with the blueprint's exceptions applied from
    the stack file the program loads (reason, owner and expiry shown)."""
    project, proc = gate_runs[blueprint]
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == EXIT_OK, stdout[-3000:] + stderr[-3000:]
    if blueprint == "llm-inference":
        assert (project / "gh-output").read_text().strip() == "status=0"  # the "fail" step will not fail the job
        sarif = json.loads((project / "hardstack.sarif").read_text())
        results = sarif["runs"][0]["results"]
        assert all(r.get("suppressions") for r in results if r.get("level") == "error")
        suppressed = [r for r in results if r.get("suppressions")]
        by_design = {r["ruleId"] for r in suppressed
                     if all(s["justification"].endswith("(owner: hardstack; by design)") for s in r["suppressions"])}
        # the blueprint's own exceptions, and hardstack's design exceptions on the load balancer's access log
        # bucket (ELB delivers only to SSE-S3 buckets) and the GuardDuty detector (its organization configuration
        # is the delegated administrator's): nothing else is suppressed
        assert {r["ruleId"] for r in suppressed} == {"CKV_AWS_144", "CKV_AWS_61"} | by_design
        assert by_design == {"CKV_AWS_145", "HS_DATA_002", "CKV2_AWS_3"}
        assert all(len(s["justification"]) >= 20 for r in suppressed for s in r["suppressions"])
    elif blueprint == "multi-tenant-gpu":
        suites = ET.parse(project / "hardstack-junit.xml").getroot()
        cases = suites.findall(".//testcase")
        assert len(cases) > 100
        assert not [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
        assert [c for c in cases if c.find("skipped") is not None]
    else:
        report = json.loads(stdout)
        assert report["summary"]["failed"] == 0 and report["summary"]["passed"] > 100
        skipped = [r for r in report["results"] if r["status"] == "skipped"]
        # the blueprint's exceptions, and hardstack's one design exception on the GuardDuty detector
        assert skipped and all(r["exception"]["owner"] == "platform-security" or
                               (r["exception"].get("by_design") and r["check_id"] == "CKV2_AWS_3") for r in skipped)


# --- the files and what they say --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("reference") / "my-stack"
    proc = run("new", "llm-inference", str(project))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert f"hardstack check {project}" in proc.stdout and "pulumi up" in proc.stdout
    return project


def test_new_writes_the_project(reference: Path) -> None:
    assert files_in(reference) == GENERATED
    for path in GENERATED:
        if path.endswith((".yaml", ".yml")):
            assert read_yaml(reference / path) is not None, path
    umask = os.umask(0o022)
    os.umask(umask)
    assert all((reference / p).stat().st_mode & 0o777 == 0o644 & ~umask for p in GENERATED)  # not mkstemp's 0600

    project = read_yaml(reference / "Pulumi.yaml")
    assert project["name"] == "llm-inference" and project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    assert project["description"] == load("llm-inference").blueprint.description

    loaded = load(reference / "stack.yaml")  # the stack file is a valid stack file of the shipped blueprint
    assert loaded.blueprint == load("llm-inference").blueprint and loaded.stack_name == "dev"

    assert (reference / "requirements.txt").read_text().splitlines()[-1] == f"hardstack=={version('hardstack')}"

    checkov = read_yaml(reference / ".checkov.yaml")
    assert checkov["framework"] == ["terraform_plan", "kubernetes"] and checkov["directory"] == ["out"]
    assert checkov["skip-download"] is True and checkov["compact"] is True
    readme = (reference / "README.md").read_text()
    assert '--external-checks-dir "$(hardstack checks-dir)"' in readme
    assert "hardstack synth . --stack dev --out-dir out" in readme
    assert {"out/", "venv/"} <= set((reference / ".gitignore").read_text().split())


def test_stack_config_lists_the_secrets_the_stack_needs(reference: Path) -> None:
    text = (reference / "Pulumi.dev.yaml").read_text()
    assert read_yaml(reference / "Pulumi.dev.yaml") == {"config": {"aws:region": "us-east-1"}}  # the rest: comments
    assert "pulumi config set --secret hardstack:oidcClientSecret" in text  # identity.vault.humans.method: oidc
    for key in ("vault:address", "vault:namespace", "--secret vault:token"):
        assert f"pulumi config set {key}" in text


def test_main_loads_the_stack_file_beside_it_and_declares_its_exceptions(reference: Path) -> None:
    tree = ast.parse((reference / "__main__.py").read_text())
    stack_file = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "STACK_FILE")  # type: ignore[attr-defined]
    assert ast.unparse(stack_file.value) == "Path(__file__).resolve().parent / 'stack.yaml'"
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {"load", "declare_exceptions", "build", "pulumi.export"} <= calls
    imports = {(n.module, a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {("hardstack.blueprints.loader", "load"), ("hardstack.stacks.program", "build")} <= imports


def test_github_workflow_uploads_sarif_always_and_fails_on_violations(reference: Path, tmp_path: Path) -> None:
    workflow = read_yaml(reference / ".github/workflows/hardstack.yml")
    assert workflow["permissions"] == {"contents": "read"}
    gate = workflow["jobs"]["gate"]
    assert gate["permissions"] == {"contents": "read", "security-events": "write"}
    steps = gate["steps"]
    assert not any("continue-on-error" in s for s in steps) and "continue-on-error" not in gate
    assert any(s.get("run") == "pip install -r requirements.txt" for s in steps)
    check = gate_step(workflow, "check")
    assert "hardstack check . --stack dev --format sarif --output hardstack.sarif" in check["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["if"].startswith("always()") and upload["with"]["sarif_file"] == "hardstack.sarif"
    fail = steps[-1]
    assert steps.index(check) < steps.index(upload) < steps.index(fail)
    assert fail["if"].startswith("always()") and "steps.check.outputs.status != '0'" in fail["if"]
    assert fail["env"]["STATUS"] == "${{ steps.check.outputs.status }}"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False

    # the steps' shell, run with a stand-in `hardstack` that finds violations (exit 1) and one that passes
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "hardstack").write_text('#!/bin/sh\necho "{}" > hardstack.sarif\nexit "$FAKE_STATUS"\n')
    (fake / "hardstack").chmod(0o755)
    for status in (1, 0):
        output = tmp_path / f"output-{status}"
        env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(output),
               "FAKE_STATUS": str(status)}
        shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
        ran = subprocess.run([*shell, check["run"]], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr  # the check step itself never stops the job before the upload
        assert output.read_text().strip() == f"status={status}" and (tmp_path / "hardstack.sarif").exists()
        failed = subprocess.run([*shell, fail["run"]], cwd=tmp_path, env={**env, "STATUS": str(status)},
                                capture_output=True, text=True)
        assert failed.returncode == status  # the job ends with hardstack's exit code

    bandit = workflow["jobs"]["bandit"]
    runs = [s.get("run", "") for s in bandit["steps"]]
    assert "pip install bandit==1.9.4" in runs
    assert "bandit -r . -x ./.venv,./venv --severity-level medium" in runs
    assert bandit["permissions"] == {"contents": "read"}


def test_gitlab_ci_reports_junit_always_and_runs_bandit(reference: Path) -> None:
    ci = read_yaml(reference / ".gitlab-ci.yml")
    job = ci["hardstack"]
    assert job["script"] == ["pip install -r requirements.txt",
                             "hardstack check . --stack dev --format junit --output hardstack-junit.xml"]
    assert job["artifacts"] == {"when": "always", "reports": {"junit": "hardstack-junit.xml"}}
    assert "allow_failure" not in job and "allow_failure" not in ci["bandit"]
    assert "bandit -r . -x ./.venv,./venv --severity-level medium" in ci["bandit"]["script"]
    assert job["stage"] in ci["stages"] and ci["bandit"]["stage"] in ci["stages"]


def test_pre_commit_hooks(reference: Path) -> None:
    """The project's own hook runs the gate; this repository offers `hardstack-check` to everyone's pre-commit."""
    (hook,) = read_yaml(reference / ".pre-commit-config.yaml")["repos"][0]["hooks"]
    assert read_yaml(reference / ".pre-commit-config.yaml")["repos"][0]["repo"] == "local"
    assert hook["entry"] == "hardstack check . --stack dev" and hook["pass_filenames"] is False
    (offered,) = read_yaml(REPO / ".pre-commit-hooks.yaml")
    assert offered["id"] == "hardstack-check" and offered["entry"] == "hardstack check"
    assert offered["language"] == "python" and offered["args"] == ["."] and offered["pass_filenames"] is False
    for files in (hook["files"], offered["files"]):
        assert all(re.search(files, f) for f in ("__main__.py", "stack.yaml", "a/b.yml"))
        assert not re.search(files, "README.md")


def test_stack_and_project_names_are_used_everywhere(tmp_path: Path) -> None:
    made = new_project("multi-tenant-gpu", tmp_path / "p", stack="prod", project="gpu-platform")
    assert files_in(tmp_path / "p") == GENERATED - {"Pulumi.dev.yaml"} | {"Pulumi.prod.yaml"}
    assert made.files["Pulumi.yaml"] == (tmp_path / "p" / "Pulumi.yaml").read_text()
    assert read_yaml(tmp_path / "p" / "Pulumi.yaml")["name"] == "gpu-platform"
    assert load(tmp_path / "p" / "stack.yaml").stack_name == "prod"
    for ci in (".github/workflows/hardstack.yml", ".gitlab-ci.yml", ".pre-commit-config.yaml", "README.md"):
        text = (tmp_path / "p" / ci).read_text()
        assert "hardstack check . --stack prod" in text and "--stack dev" not in text, ci


def test_blueprint_file_is_copied_and_referenced(tmp_path: Path) -> None:
    """A blueprint given as a file travels with the project; without Vault, no Vault settings are asked for."""
    source = write_blueprint(tmp_path / "team.yaml", data={"buckets": [{"name": "models", "purpose": "model-artifacts"}]})
    proc = run("new", str(source), str(tmp_path / "p"))
    assert proc.returncode == EXIT_OK, proc.stderr
    project = tmp_path / "p"
    assert files_in(project) == GENERATED | {"blueprint.yaml"}
    assert (project / "blueprint.yaml").read_text() == source.read_text()
    assert read_yaml(project / "stack.yaml")["blueprint"] == "blueprint.yaml"
    assert load(project / "stack.yaml").blueprint == load(source).blueprint
    config = (project / "Pulumi.dev.yaml").read_text()
    assert read_yaml(project / "Pulumi.dev.yaml") == {"config": {"aws:region": "eu-west-1"}}
    assert "vault:" not in config and "oidcClientSecret" not in config


def test_jwt_sign_in_needs_no_client_secret(tmp_path: Path) -> None:
    vault = {"workload_auth": "approle",
             "humans": {"method": "jwt", "discovery_url": "https://idp.example.com", "bound_audiences": ["vault"]}}
    made = scaffold.plan(str(write_blueprint(tmp_path / "bp.yaml", identity={"vault": vault})))
    assert "pulumi config set vault:address" in made.files["Pulumi.dev.yaml"]
    assert "oidcClientSecret" not in made.files["Pulumi.dev.yaml"]


# --- no value becomes code --------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--stack", "--name"])
@pytest.mark.parametrize("value", ['dev"', "dev\nname: x", "{{ 7*7 }}", "Dev", "../dev"])
def test_cli_refuses_names_that_are_not_names(tmp_path: Path, option: str, value: str) -> None:
    proc = run("new", "llm-inference", str(tmp_path / "p"), option, value)
    assert proc.returncode == EXIT_INVALID
    assert f"{option}: not a valid name (received {value!r}); allowed: a name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_blueprint_description_stays_data(tmp_path: Path, hostile: str) -> None:
    """A blueprint's free text reaches Pulumi.yaml and the README; it reads back as the same string and adds no
    key, no template is evaluated, the README keeps it on one line."""
    source = write_blueprint(tmp_path / "bp.yaml", description=hostile)
    assert load(source).blueprint.description == hostile
    new_project(str(source), tmp_path / "p")
    project = read_yaml(tmp_path / "p" / "Pulumi.yaml")
    assert project["description"] == hostile and set(project) == {"name", "description", "runtime"}
    quote = next(line for line in (tmp_path / "p" / "README.md").read_text().splitlines() if line.startswith("> "))
    assert "{{" not in quote and "<" not in quote.replace("&lt;", "")
    for path in files_in(tmp_path / "p") - {"blueprint.yaml"}:
        assert "49" not in (tmp_path / "p" / path).read_text(), path  # {{ 7 * 7 }} was never evaluated


@pytest.mark.parametrize("hostile", HOSTILE)
def test_filters_quote_hostile_values(hostile: str) -> None:
    """The second layer: values that do reach a template come back out as exactly themselves."""
    env = environment()
    context = {"project": hostile, "description": hostile, "stack_file": hostile, "stack": "dev", "region": hostile,
               "blueprint_ref": hostile, "vault": True, "oidc": True, "shipped": True, "registry": True,
               "endpoints": ["chat"], "endpoint_secrets": ["oidcClientSecret-chat"]}
    pulumi_yaml = yaml.safe_load(env.get_template("Pulumi.yaml.j2").render({**context, "stack_file": "stack.yaml"}))
    assert pulumi_yaml["name"] == pulumi_yaml["description"] == hostile
    config = yaml.safe_load(env.get_template("Pulumi.stack.yaml.j2").render({**context, "stack_file": "stack.yaml"}))
    assert config == {"config": {"aws:region": hostile}}
    assert yaml.safe_load(env.get_template("stack.yaml.j2").render(context))["blueprint"] == hostile
    main = ast.parse(env.get_template("__main__.py.j2").render(context))
    stack_file = next(n for n in main.body if isinstance(n, ast.Assign) and n.targets[0].id == "STACK_FILE")  # type: ignore[attr-defined]
    assert stack_file.value.right.value == hostile  # type: ignore[attr-defined]
    benign = ast.parse(env.get_template("__main__.py.j2").render({**context, "stack_file": "stack.yaml"}))
    assert [ast.dump(n) for n in main.body if n is not stack_file] == \
        [ast.dump(n) for n in benign.body if not (isinstance(n, ast.Assign) and n.targets[0].id == "STACK_FILE")]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not a name"):  # a name is checked again where it is inserted as itself
        env.get_template("stack.yaml.j2").render({**context, "stack": hostile})
    with pytest.raises(ValueError, match="not a name"):  # so is an endpoint's
        env.get_template("stack.yaml.j2").render({**context, "endpoints": [hostile]})
    with pytest.raises(ValueError, match="not a plain word"):  # and a stack secret's key
        env.get_template("Pulumi.stack.yaml.j2").render({**context, "stack_file": "stack.yaml",
                                                         "endpoint_secrets": [hostile]})


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_yaml_and_python_quoting_round_trip_any_text(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_string(text)}\nnext: 1\n") == {"key": text, "next": 1}
    assert json.loads(yaml_string(text)) == text  # it is a JSON string too
    assert ast.literal_eval(python_literal(text)) == text
    assert "\n" not in python_literal(text) and "\n" not in yaml_string(text)


def test_a_value_without_a_quoting_filter_is_refused() -> None:
    env = environment()
    with pytest.raises(UnquotedValue):
        env.from_string("name: {{ value }}\n").render(value="x")
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("name: {{ missing | yaml }}\n").render()
    assert env.from_string("name: {{ value | yaml }}\n").render(value="x") == 'name: "x"\n'


def test_every_template_inserts_values_only_through_filters() -> None:
    used = set(TEMPLATES.values())
    assert used == {p.name for p in TEMPLATE_DIR.glob("*.j2")}
    for template in used:
        source = (TEMPLATE_DIR / template).read_text()
        source = re.sub(r"{% raw %}.*?{% endraw \+?%}", "", source)
        for expression in re.findall(r"{{(.*?)}}", source):
            assert re.fullmatch(r"\s*\w+\s*\|\s*(yaml|py|name|token|md)\s*", expression), (template, expression)


# --- the directory and the blueprint ------------------------------------------------------------------------------


def test_non_empty_directory_is_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("new", "llm-inference", str(tmp_path))
    assert proc.returncode == EXIT_INVALID
    assert f"{tmp_path}: the directory is not empty" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_in(tmp_path) == {"notes.txt"}


def test_force_replaces_generated_files_and_keeps_the_users(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "deploy.yml").write_text("name: mine\n")
    (tmp_path / "README.md").write_text("old readme")
    proc = run("new", "llm-inference", str(tmp_path), "--force")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert files_in(tmp_path) == GENERATED | {"notes.txt", ".github/workflows/deploy.yml"}
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / ".github" / "workflows" / "deploy.yml").read_text() == "name: mine\n"
    assert (tmp_path / "README.md").read_text().startswith("# llm-inference\n")


def test_force_refuses_a_directory_where_a_file_goes_before_writing(tmp_path: Path) -> None:
    (tmp_path / "README.md").mkdir()
    with pytest.raises(InvalidInput, match="is a directory where the project writes a file"):
        new_project("llm-inference", tmp_path, force=True)
    assert files_in(tmp_path) == set()


def test_a_failing_render_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything is rendered before the first write."""
    monkeypatch.setitem(TEMPLATES, "zz-late.txt", "broken.j2")
    monkeypatch.setattr(scaffold, "environment", lambda: _with_template(environment(), "broken.j2", "{{ oops }}"))
    with pytest.raises(UnquotedValue):
        new_project("llm-inference", tmp_path / "p", stack="dev")
    assert not (tmp_path / "p").exists()


def _with_template(env: jinja2.Environment, name: str, source: str) -> jinja2.Environment:
    env.loader = jinja2.ChoiceLoader([jinja2.DictLoader({name: source}), env.loader])  # type: ignore[list-item]
    env.globals["oops"] = "unquoted"
    return env


def test_invalid_blueprint_exit_2_with_location_and_nothing_written(tmp_path: Path) -> None:
    bp = tmp_path / "bp.yaml"
    bp.write_text("name: demo\nregion: us-east-1\nnetwork:\n  egress: open\n")
    proc = run("new", str(bp), str(tmp_path / "p"))
    assert proc.returncode == EXIT_INVALID
    assert f"{bp}:4: network.egress:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "p").exists()


def test_unknown_blueprint_names_the_shipped_ones(tmp_path: Path) -> None:
    proc = run("new", "llm-inferense", str(tmp_path / "p"))
    assert proc.returncode == EXIT_INVALID and "no such blueprint" in proc.stderr
    assert all(name in proc.stderr for name in catalog())
    assert not (tmp_path / "p").exists()


def test_stack_file_and_local_extends_are_refused(tmp_path: Path) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text("blueprint: llm-inference\nname: prod\n")
    proc = run("new", str(stack), str(tmp_path / "p"))
    assert proc.returncode == EXIT_INVALID and f"{stack}:1: blueprint: is a stack file" in proc.stderr
    parent = write_blueprint(tmp_path / "parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {parent.name}\nname: child-env\n")
    proc = run("new", str(child), str(tmp_path / "p"))
    assert proc.returncode == EXIT_INVALID and f"{child}:1: extends:" in proc.stderr
    assert "self-contained" in proc.stderr and not (tmp_path / "p").exists()
    shipped_child = write_blueprint(tmp_path / "shipped-child.yaml", extends="llm-inference", name="child-env")
    assert scaffold.plan(str(shipped_child)).files["blueprint.yaml"] == shipped_child.read_text()


# --- exceptions a program declares, packaging ---------------------------------------------------------------------


def test_declared_exceptions_keep_their_own_locations() -> None:
    from hardstack.stacks.program import collect_declared, declare_exceptions
    from hardstack.stacks.targets import _combined

    llm, mtg = load("llm-inference"), load("multi-tenant-gpu")
    declare_exceptions(llm)  # outside the gate: nothing collects, nothing happens
    with collect_declared() as declared:
        declare_exceptions(llm)
        declare_exceptions(llm)
        declare_exceptions(mtg)
    assert declared == [llm, mtg]
    specs, where = _combined([(list(llm.blueprint.exceptions), llm.locate),
                              (list(mtg.blueprint.exceptions), mtg.locate)])
    n = len(llm.blueprint.exceptions)
    assert specs == [*llm.blueprint.exceptions, *mtg.blueprint.exceptions]
    assert where("exceptions", n, "check") == mtg.locate("exceptions", 0, "check")
    assert where("exceptions", 0, "check")[0].endswith("llm-inference.yaml")  # type: ignore[index]
    assert where("exceptions", len(specs)) is None and where("name") is None


def test_templates_ship_as_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["hardstack.stacks"]
    stacks = REPO / "stacks"
    for template in TEMPLATE_DIR.iterdir():
        assert any(fnmatch.fnmatch(template.relative_to(stacks).as_posix(), g) for g in globs), template
