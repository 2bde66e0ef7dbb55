"""Blueprint and stack files: validation, merging, inheritance, and errors that point at file, line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from hardstack.blueprints.loader import catalog, load
from hardstack.blueprints.schema import json_schema
from hardstack.errors import EXIT_INVALID, InvalidInput, InvalidInputs

MINIMAL = """\
name: demo
region: us-east-1
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(exc: pytest.ExceptionInfo) -> list[InvalidInput]:
    err = exc.value
    return err.errors if isinstance(err, InvalidInputs) else [err]


def test_minimal_blueprint_gets_the_strictest_defaults(tmp_path: Path) -> None:
    """Unset settings take their secure default: regulated data, air-gapped network, yearly rotation."""
    bp = load(write(tmp_path, "bp.yaml", MINIMAL)).blueprint
    assert bp.classification.value == "regulated"
    assert bp.network.egress == "none"
    assert bp.network.flow_log_retention_days >= 365
    assert bp.kms.rotation_period_days == 365


def test_unknown_key_names_file_line_field_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "bp.yaml", MINIMAL + "network:\n  cidr: 10.0.0.0/16\n  egres: nat\n")
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    (err,) = errors_of(exc)
    assert err.exit_code == EXIT_INVALID
    assert (err.file, err.line, err.field) == (str(path), 5, "network.egres")
    assert "unknown setting" in str(err) and "egress" in (err.allowed or "")


def test_wrong_enum_names_value_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "bp.yaml", MINIMAL + "classification: secret\n")
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    (err,) = errors_of(exc)
    assert (err.line, err.field, err.received) == (3, "classification", "secret")
    assert "'regulated'" in str(err)


def test_nested_list_error_points_at_the_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bp.yaml",
        MINIMAL + "data:\n  buckets:\n    - name: ok-bucket\n      purpose: general\n    - name: bad\n      purpose: memes\n",
    )
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    (err,) = errors_of(exc)
    assert (err.line, err.field, err.received) == (8, "data.buckets[1].purpose", "memes")


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "bp.yaml", "name: Demo\nregion: mars\nfoo: 1\n")
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    fields = {e.field for e in errors_of(exc)}
    assert fields == {"name", "region", "foo"}


def test_overlapping_cidrs_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bp.yaml",
        MINIMAL
        + "network:\n  cidr: 10.0.0.0/16\n  tiers:\n    data: {cidr: 10.0.0.0/22}\n    ingress: {cidr: 10.0.2.0/24}\n",
    )
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    (err,) = errors_of(exc)
    assert err.field == "network.tiers" and "overlaps" in str(err) and err.line == 5


def test_duplicate_bucket_names_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bp.yaml",
        MINIMAL + "data:\n  buckets:\n    - {name: same, purpose: general}\n    - {name: same, purpose: general}\n",
    )
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    assert "duplicate bucket name 'same'" in str(exc.value)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "bp.yaml", MINIMAL + "classification: public\nclassification: regulated\n")
    with pytest.raises(InvalidInput) as exc:
        load(path)
    assert exc.value.line == 4 and "duplicate key 'classification' (first at line 3)" in str(exc.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("", "top level must be a mapping"),
        ("name: !!python/object:os.system x\n", "invalid YAML"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, needle: str) -> None:
    """Syntax errors, non-mappings and unsafe tags are refused with the file named."""
    path = write(tmp_path, "bp.yaml", text)
    with pytest.raises(InvalidInput) as exc:
        load(path)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_unknown_target_lists_shipped_blueprints() -> None:
    with pytest.raises(InvalidInput) as exc:
        load("no-such-blueprint")
    assert "llm-inference" in (exc.value.allowed or "")


def test_stack_file_overrides_merge_and_keep_their_lines(tmp_path: Path) -> None:
    """Mappings merge, named lists merge by name (and grow), scalars replace; errors point into the stack file."""
    write(
        tmp_path,
        "base.yaml",
        MINIMAL + "classification: confidential\ndata:\n  buckets:\n    - {name: models, purpose: model-artifacts}\n",
    )
    stack = write(
        tmp_path,
        "prod.yaml",
        """\
        blueprint: base.yaml
        name: prod
        overrides:
          network:
            egress: nat
          data:
            buckets:
              - name: models
                classification: regulated
              - name: features
                purpose: feature-store
        """,
    )
    loaded = load(stack)
    bp = loaded.blueprint
    assert loaded.stack_name == "prod"
    assert bp.network.egress == "nat" and str(bp.network.cidr) == "10.40.0.0/16"
    assert [(b.name, b.classification and b.classification.value) for b in bp.data.buckets] == [
        ("models", "regulated"),
        ("features", None),
    ]
    assert bp.data.buckets[0].purpose.value == "model-artifacts"
    assert loaded.locate("network", "egress") == (str(stack), 5)
    assert loaded.locate("classification")[0].endswith("base.yaml")


def test_override_of_unknown_setting_points_at_stack_file(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", MINIMAL)
    stack = write(tmp_path, "prod.yaml", "blueprint: base.yaml\noverrides:\n  network:\n    egres: nat\n")
    with pytest.raises(InvalidInputs) as exc:
        load(stack)
    (err,) = errors_of(exc)
    assert (err.file, err.line, err.field) == (str(stack), 4, "network.egres")


def test_stack_file_of_a_shipped_blueprint(tmp_path: Path) -> None:
    stack = write(tmp_path, "dev.yaml", "blueprint: llm-inference\nname: dev\noverrides:\n  region: eu-west-1\n")
    loaded = load(stack)
    assert loaded.blueprint.region == "eu-west-1" and loaded.blueprint.name == "llm-inference"


def test_stack_file_unknown_top_level_key(tmp_path: Path) -> None:
    stack = write(tmp_path, "dev.yaml", "blueprint: llm-inference\noverides: {}\n")
    with pytest.raises(InvalidInputs) as exc:
        load(stack)
    (err,) = errors_of(exc)
    assert (err.line, err.field) == (2, "overides") and "overrides" in (err.allowed or "")


def test_extends_inherits_and_child_wins(tmp_path: Path) -> None:
    child = write(tmp_path, "team.yaml", "extends: llm-inference\nname: team-llm\nnetwork:\n  availability_zones: 2\n")
    bp = load(child).blueprint
    assert bp.name == "team-llm" and bp.network.availability_zones == 2
    assert {b.name for b in bp.data.buckets} >= {"training-data", "model-artifacts"}


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: b.yaml\nname: aa\nregion: us-east-1\n")
    b = write(tmp_path, "b.yaml", "extends: a.yaml\nname: bb\nregion: us-east-1\n")
    with pytest.raises(InvalidInput) as exc:
        load(b)
    assert "cycle" in str(exc.value) and exc.value.field == "extends"


def test_reserved_tag_keys_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "bp.yaml", MINIMAL + "tags:\n  'hardstack:stack': spoofed\n")
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    assert "reserved tag keys" in str(exc.value)


def test_shipped_blueprints_validate() -> None:
    assert "llm-inference" in catalog()
    for name in catalog():
        assert load(name).blueprint.name == name


def test_json_schema_accepts_shipped_and_rejects_unknown_keys() -> None:
    """The published JSON Schema agrees with the loader: shipped files validate, typos do not."""
    import yaml

    schema = json_schema("blueprint")
    for path in catalog().values():  # as an editor sees YAML: dates are strings
        jsonschema.validate(json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str)), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x1", "region": "us-east-1", "netwrk": {}}, schema)
    stack_schema = json_schema("stack")
    jsonschema.validate({"blueprint": "llm-inference", "overrides": {}}, stack_schema)
    assert "description" in json.dumps(schema["properties"]["classification"])
