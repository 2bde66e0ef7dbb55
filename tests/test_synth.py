"""Synthesis under mocks: any Pulumi Python program becomes an Inventory of resources, inputs and references."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardstack.errors import InvalidInput, SynthError
from hardstack.stacks.inventory import Inventory
from hardstack.stacks.mocks import SECRET
from hardstack.stacks.synth import run_program, synth_directory
from hardstack.stacks.targets import synth_target

from .helpers import ref_attr

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def user_inventory() -> Inventory:
    return synth_directory(FIXTURES / "user-project")


def test_user_project_resources_and_config(user_inventory: Inventory) -> None:
    """The program runs with its stack's config (namespaced keys, region) and local modules."""
    types = sorted(r.type for r in user_inventory)
    assert types == [
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:ssm/parameter:Parameter",
    ]
    assert user_inventory.named("models").inputs["bucket"] == "team-models-artifacts"
    key = user_inventory.named("models-key")
    assert key.urn == "urn:pulumi:dev::team-models::aws:kms/key:Key::models-key"
    assert key.outputs["arn"].startswith("arn:aws:kms:eu-west-1:")


def test_user_project_nested_references(user_inventory: Inventory) -> None:
    """A nested input (the SSE rule's key) is recorded as a reference to the key's ARN, not a literal."""
    sse = user_inventory.named("models-sse")
    key = user_inventory.named("models-key")
    bucket = user_inventory.named("models")
    path = ("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
    assert ref_attr(sse, *path) == (key.urn, "arn")
    assert ref_attr(sse, "bucket") == (bucket.urn, "bucket")
    policy_refs = [r for r in user_inventory.named("models-policy").references if r.path == ("policy",)]
    assert [(r.resource, r.attribute, r.match) for r in policy_refs] == [(bucket.urn, "arn", "contains")]


def test_secrets_never_reach_the_inventory(user_inventory: Inventory) -> None:
    param = user_inventory.named("db-password")
    assert param.inputs["value"] == SECRET
    assert "AAABAH" not in user_inventory.dumps()


def test_output_is_deterministic() -> None:
    """The same input gives byte-identical output."""
    first = synth_directory(FIXTURES / "user-project").dumps()
    second = synth_directory(FIXTURES / "user-project").dumps()
    assert first == second
    assert synth_target("llm-inference").dumps() == synth_target("llm-inference").dumps()


def test_program_failure_names_the_programs_file_and_line() -> None:
    with pytest.raises(SynthError) as exc:
        synth_directory(FIXTURES / "broken-project")
    assert "__main__.py:4" in str(exc.value) and "the team's program has a bug" in str(exc.value)


def test_directory_without_pulumi_yaml(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        synth_directory(tmp_path)
    assert "no Pulumi.yaml" in str(exc.value)


def test_non_python_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: nodejs\n")
    with pytest.raises(InvalidInput) as exc:
        synth_directory(tmp_path)
    assert exc.value.received == "nodejs" and exc.value.line == 2


def test_component_children_and_parents() -> None:
    """Components are recorded with their children; children name their parent's URN."""

    def program() -> None:
        from hardstack.blueprints.kms import KmsSpec
        from hardstack.modules.kms import CustomerManagedKey

        CustomerManagedKey("k", KmsSpec(), description="test")

    inv = run_program(program, project="p", stack="s", region="us-east-1")
    component = inv.named("k")
    assert component.type == "hardstack:kms:CustomerManagedKey" and component.parent is None
    assert {c.name for c in inv.children(component.urn)} == {"k-key", "k-alias"}
    alias = inv.named("k-alias")
    assert ref_attr(alias, "targetKeyId") == (inv.named("k-key").urn, "keyId")


def test_inventory_round_trips_through_json(reference_inventory: Inventory) -> None:
    import json

    again = Inventory.from_json(json.loads(reference_inventory.dumps()))
    assert again.dumps() == reference_inventory.dumps()
