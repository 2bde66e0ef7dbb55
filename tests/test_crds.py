"""The vendored CRDs: where they come from, that they ship, and that the schema check (HS_K8S_005) holds Kyverno
ClusterPolicies and TargetGroupBindings to them."""

from __future__ import annotations

import copy
import fnmatch
import gzip
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from hardstack.modules.admission import digests_spec, registries_spec, verify_images_spec
from hardstack.policies import crds
from hardstack.policies.checks import hs_k8s_005
from hardstack.policies.k8s_schema import validate_manifest

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "policies" / crds.DIRECTORY
VERSION = "1.33"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def cluster_policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name}, "spec": spec}


def target_group_binding() -> dict[str, Any]:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "chat", "namespace": "serving"},
        "spec": {
            "serviceRef": {"name": "inference-server", "port": 8000},
            "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/chat/0123456789abcdef",
            "targetType": "ip",
            "networking": {"ingress": [{"from": [{"securityGroup": {"groupID": "sg-0123456789abcdef0"}}],
                                        "ports": [{"port": 8000, "protocol": "TCP"}]}]},
        },
    }


def schema_verdicts(*manifests: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    objects = {f"{m['kind']}.{m['metadata'].get('namespace', 'default')}.{m['metadata']['name']}": m
               for m in manifests}
    return {address: (status, detail) for address, status, detail in hs_k8s_005.evaluate(objects, VERSION)}


def test_every_vendored_file_is_listed_with_its_provenance() -> None:
    readme = (FOLDER / "README.md").read_text()
    files = sorted(p.name for p in FOLDER.glob("*.json.gz"))
    assert files == ["elbv2.k8s.aws_targetgroupbindings.json.gz", "kyverno.io_clusterpolicies.json.gz",
                     "monitoring.coreos.com_alertmanagerconfigs.json.gz",
                     "monitoring.coreos.com_prometheusrules.json.gz"]
    for path in FOLDER.glob("*.json.gz"):
        source = json.loads(gzip.decompress(path.read_bytes()))["source"]
        [row] = [line for line in readme.splitlines() if line.startswith(f"| `{path.name}`")]
        for value in (source["tag"], source["path"], source["sha256"], source["repository"]):
            assert value in row, (path.name, value)
        assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])


PROMETHEUS_OPERATOR = "v0.93.0"
"""The Prometheus operator release whose CRDs the monitoring objects are validated against (kube-prometheus-stack,
which the platform installs, not hardstack, ships the same schemas in 88.5.3)."""


def test_vendored_tags_are_those_of_the_pinned_charts() -> None:
    from hardstack.modules.charts import KYVERNO, LOAD_BALANCER_CONTROLLER

    tags = {d["crd"]["spec"]["names"]["kind"]: d["source"]["tag"] for d in crds.bundled()}
    assert tags == {"ClusterPolicy": KYVERNO.app_version, "TargetGroupBinding": LOAD_BALANCER_CONTROLLER.app_version,
                    "PrometheusRule": PROMETHEUS_OPERATOR, "AlertmanagerConfig": PROMETHEUS_OPERATOR}


def test_served_versions_are_known() -> None:
    assert set(crds.bundled_schemas()) == {
        ("kyverno.io/v1", "ClusterPolicy"), ("kyverno.io/v2beta1", "ClusterPolicy"),
        ("elbv2.k8s.aws/v1alpha1", "TargetGroupBinding"), ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"),
        ("monitoring.coreos.com/v1", "PrometheusRule"), ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    }


def test_the_files_ship_in_the_package() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["hardstack.policies"]
    for path in FOLDER.iterdir():
        rel = f"{crds.DIRECTORY}/{path.name}"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_vendoring_drops_descriptions_but_not_a_field_named_description() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com", "labels": {"x": "y"}},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Thing", "plural": "things", "singular": "thing"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "additionalPrinterColumns": [],
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "description": "a thing",
                                   "properties": {"spec": {"type": "object", "description": "its spec", "properties": {
                                       "description": {"type": "string", "description": "the thing's description"},
                                       "items": {"type": "array", "items": {"type": "string", "description": "x"}},
                                   }}}}}}]},
    }
    source = yaml.safe_dump(crd).encode()
    made = crds.vendor(source, repository="example/things", tag="v1.0.0", path="crds/things.yaml")
    assert made == crds.vendor(source, repository="example/things", tag="v1.0.0", path="crds/things.yaml")
    document = json.loads(gzip.decompress(made))
    schema = document["crd"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema == {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "description": {"type": "string"}, "items": {"type": "array", "items": {"type": "string"}}}}}}
    assert "labels" not in document["crd"]["metadata"]
    assert document["source"]["tag"] == "v1.0.0" and len(document["source"]["sha256"]) == 64


def test_vendoring_reads_a_bare_equals_sign_as_kubernetes_does() -> None:
    """PyYAML (YAML 1.1) reads a bare `=` as its `value` type and refuses it; Kubernetes reads the string "=" (the
    Prometheus operator's CRDs list it among Alertmanager's match types)."""
    source = b"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Thing, plural: things}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          op:
            enum:
            - =
            - '!='
            type: string
"""
    document = json.loads(gzip.decompress(crds.vendor(source, repository="example/things", tag="v1", path="t.yaml")))
    schema = document["crd"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["op"]["enum"] == ["=", "!="]


def test_hardstacks_cluster_policies_are_valid() -> None:
    policies = [cluster_policy("verify", verify_images_spec([f"{HOST}/s/*"], KEY_ARN)),
                cluster_policy("registries", registries_spec([f"{HOST}/s/*", f"{HOST}/quay/org/*"])),
                cluster_policy("digests", digests_spec())]
    for p in policies:
        assert validate_manifest(p, VERSION) == [], p["metadata"]["name"]
    assert {status for status, _ in schema_verdicts(*policies).values()} == {"passed"}


def test_a_misspelt_cluster_policy_field_fails_the_schema_check() -> None:
    spec = verify_images_spec([f"{HOST}/s/*"], KEY_ARN)
    spec["rules"][0]["verifyImages"][0]["failureActions"] = spec["rules"][0]["verifyImages"][0].pop("failureAction")
    verdicts = schema_verdicts(cluster_policy("verify", spec))
    status, detail = verdicts["ClusterPolicy.default.verify"]
    assert status == "failed" and "spec.rules[0].verifyImages[0].failureActions: unknown field" in str(detail)


def test_a_wrong_enum_in_a_cluster_policy_fails_the_schema_check() -> None:
    spec = digests_spec()
    spec["rules"][0]["validate"]["failureAction"] = "Block"
    [(status, detail)] = schema_verdicts(cluster_policy("digests", spec)).values()
    assert status == "failed" and "spec.rules[0].validate.failureAction" in str(detail)


def test_target_group_bindings_are_held_to_their_crd() -> None:
    good = target_group_binding()
    assert validate_manifest(good, VERSION) == []
    bad = copy.deepcopy(good)
    bad["spec"]["targetGroupArn"] = bad["spec"].pop("targetGroupARN")
    bad["spec"]["targetType"] = "pod"
    paths = [e.path for e in validate_manifest(bad, VERSION)]
    assert paths == ["spec.targetGroupArn", "spec.targetType"]
    [(status, _)] = schema_verdicts(bad).values()
    assert status == "failed"
