"""Kubernetes manifests against the bundled OpenAPI schemas: valid ones pass, invalid ones report every error."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hardstack.policies import k8s_schema
from hardstack.policies.k8s_schema import (
    SUPPORTED_VERSIONS,
    SchemaError,
    register_crd,
    register_crd_schema,
    unregister_crd_schema,
    validate_manifest,
    validate_manifests,
)

VERSION = "1.33"


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "inference",
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def default_deny() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "inference"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def allow_dns() -> dict[str, Any]:
    """Ports are int-or-string: a number and a named port are both valid."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", "namespace": "inference"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "vllm"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}],
                }
            ],
        },
    }


def resource_quota() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpu-quota", "namespace": "inference"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "4", "limits.memory": "64Gi", "pods": 20}},
    }


def limit_range() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": "inference"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "1", "memory": "2Gi"},
                    "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                    "max": {"cpu": 8, "memory": "32Gi"},
                }
            ]
        },
    }


def role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader", "namespace": "inference"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
    }


def role_binding() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "reader", "namespace": "inference"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "vllm", "namespace": "inference"}],
    }


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "vllm", "namespace": "inference"},
        "automountServiceAccountToken": False,
    }


def runtime_class() -> dict[str, Any]:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp3-encrypted"},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": "arn:aws:kms:eu-west-1:111122223333:key/abc"},
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm", "namespace": "inference", "labels": {"app": "vllm"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "vllm"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "vllm"}},
                "spec": {
                    "serviceAccountName": "vllm",
                    "automountServiceAccountToken": False,
                    "runtimeClassName": "nvidia",
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute",
                         "tolerationSeconds": 300},
                    ],
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.6.3",
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "resources": {
                                "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
                                "limits": {"memory": "16Gi", "nvidia.com/gpu": 1},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                            "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        }
                    ],
                },
            },
        },
    }


VALID = [
    namespace,
    default_deny,
    allow_dns,
    resource_quota,
    limit_range,
    role,
    role_binding,
    service_account,
    runtime_class,
    storage_class,
    deployment,
]


def paths(errors: list[SchemaError]) -> list[str]:
    return [e.path for e in errors]


# --- versions ---------------------------------------------------------------------------------------------------


def test_supported_versions_are_the_bundled_strict_schemas() -> None:
    assert SUPPORTED_VERSIONS == tuple(sorted(SUPPORTED_VERSIONS, key=lambda v: tuple(map(int, v.split(".")))))
    assert {"1.25", "1.33", "1.37"} <= set(SUPPORTED_VERSIONS)
    for v in SUPPORTED_VERSIONS:
        assert (k8s_schema._schema_dir(v) / "_definitions.json").is_file()
        assert k8s_schema._schema_dir(v).name.endswith("-local-strict")


@pytest.mark.parametrize("bad", ["1.99", "1.24", "latest", "", "1"])
def test_unsupported_version_raises_naming_the_supported_ones(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_manifest(namespace(), bad)
    assert "1.33" in str(info.value) and SUPPORTED_VERSIONS[0] in str(info.value)
    with pytest.raises(ValueError):
        validate_manifests([], bad)


def test_version_spellings() -> None:
    assert validate_manifest(namespace(), "v1.33") == []
    assert validate_manifest(namespace(), "1.33.4") == []


# --- valid manifests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("make", VALID, ids=lambda f: f.__name__)
def test_valid_manifests_pass(make: Any, version: str) -> None:
    assert validate_manifest(make(), version) == []


def test_validate_manifests_of_a_valid_set() -> None:
    assert validate_manifests((make() for make in VALID), VERSION) == []


def test_int_or_string_and_quantity_quirks() -> None:
    d = deployment()
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": "10%"}
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 2.5  # a number is a quantity
    assert validate_manifest(d, VERSION) == []
    d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1.5  # neither an integer nor a string
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = True
    assert paths(validate_manifest(d, VERSION)) == [
        "spec.strategy.rollingUpdate.maxSurge",
        "spec.template.spec.containers[0].resources.limits.cpu",
    ]


def test_null_means_unset() -> None:
    d = deployment()
    d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = None
    d["spec"]["replicas"] = None
    assert validate_manifest(d, VERSION) == []


# --- invalid manifests: every error, with its path ---------------------------------------------------------------


def test_two_mistakes_give_two_errors_with_their_paths() -> None:
    d = deployment()
    d["spec"]["replicas"] = "three"
    d["spec"]["template"]["spec"]["containers"][0]["image"] = 42
    errors = validate_manifest(d, VERSION)
    assert paths(errors) == ["spec.replicas", "spec.template.spec.containers[0].image"]
    assert all((e.kind, e.name, e.namespace) == ("Deployment", "vllm", "inference") for e in errors)
    assert "three" in errors[0].message and "integer" in errors[0].message
    assert "42" in errors[1].message and "string" in errors[1].message


def test_wrong_type_for_replicas() -> None:
    d = deployment()
    d["spec"]["replicas"] = "three"
    [error] = validate_manifest(d, VERSION)
    assert error.path == "spec.replicas"
    assert error.message == "'three' is not of type 'integer', 'null'"


def test_unknown_fields_are_errors_each_at_its_own_path() -> None:
    d = deployment()
    d["spec"]["replica"] = 3
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged_"] = False
    d["metadata"]["label"] = {"a": "b"}
    errors = validate_manifest(d, VERSION)
    assert paths(errors) == [
        "metadata.label",
        "spec.replica",
        "spec.template.spec.containers[0].securityContext.privileged_",
    ]
    assert errors[1].message == "unknown field 'replica'"


def test_unknown_top_level_field() -> None:
    ns = namespace()
    ns["spec"] = {"finalizers": ["kubernetes"]}  # valid
    ns["specs"] = {}
    assert [(e.path, e.message) for e in validate_manifest(ns, VERSION)] == [("specs", "unknown field 'specs'")]


def test_missing_required_fields() -> None:
    d = deployment()
    containers = d["spec"]["template"]["spec"]["containers"]
    del containers[0]["name"]
    containers.append({"image": "busybox"})
    del d["spec"]["selector"]
    errors = validate_manifest(d, VERSION)
    assert paths(errors) == [
        "spec.selector",
        "spec.template.spec.containers[0].name",
        "spec.template.spec.containers[1].name",
    ]
    assert errors[1].message == "required field 'name' is missing"


def test_errors_sorted_by_path_with_numeric_indices() -> None:
    d = deployment()
    containers = d["spec"]["template"]["spec"]["containers"]
    for i in range(1, 12):
        containers.append({"name": f"c{i}", "image": "busybox", "ports": [{"containerPort": "80"}]})
    errors = validate_manifest(d, VERSION)
    assert paths(errors) == [f"spec.template.spec.containers[{i}].ports[0].containerPort" for i in range(1, 12)]


def test_enum_and_map_key_paths() -> None:
    q = resource_quota()
    q["spec"]["hard"]["requests.nvidia.com/gpu"] = ["4"]
    errors = validate_manifest(q, VERSION)
    assert paths(errors) == ['spec.hard["requests.nvidia.com/gpu"]']
    sa = service_account()
    sa["automountServiceAccountToken"] = "false"
    assert paths(validate_manifest(sa, VERSION)) == ["automountServiceAccountToken"]


def test_many_errors_in_a_network_policy() -> None:
    np = default_deny()
    np["spec"]["podSelector"] = {"matchLabel": {"app": "x"}}
    np["spec"]["policyTypes"] = "Ingress"
    np["spec"]["ingress"] = [{"from": [{"ipBlock": {"except": ["10.0.0.0/8"]}}], "ports": [{"port": {"n": 1}}]}]
    errors = validate_manifest(np, VERSION)
    assert paths(errors) == [
        "spec.ingress[0].from[0].ipBlock.cidr",
        "spec.ingress[0].ports[0].port",
        "spec.podSelector.matchLabel",
        "spec.policyTypes",
    ]


def test_validate_manifests_collects_across_manifests() -> None:
    bad_rb = role_binding()
    del bad_rb["roleRef"]["name"]
    bad_rc = runtime_class()
    bad_rc["handlers"] = ["nvidia"]
    errors = validate_manifests([namespace(), bad_rb, storage_class(), bad_rc], VERSION)
    assert [(e.kind, e.name, e.path) for e in errors] == [
        ("RoleBinding", "reader", "roleRef.name"),
        ("RuntimeClass", "nvidia", "handlers"),
    ]


def test_kind_must_match_api_version() -> None:
    d = deployment()
    d["apiVersion"] = "apps/v1beta1"  # removed long ago
    [error] = validate_manifest(d, VERSION)
    assert error.path == "" and "no schema is known" in error.message
    np = default_deny()
    np["apiVersion"] = "networking.example.com/v1"  # same first label as networking.k8s.io, but another group
    assert "no schema is known" in validate_manifest(np, VERSION)[0].message
    # files exist for non-kind types too; they are not kinds
    spec_type = {"apiVersion": "apps/v1", "kind": "DeploymentSpec"}
    assert "no schema is known" in validate_manifest(spec_type, VERSION)[0].message


def test_malformed_manifests() -> None:
    assert "apiVersion" in validate_manifest({"kind": "Namespace", "metadata": {"name": "x"}}, VERSION)[0].message
    assert "mapping" in validate_manifest(["not", "a", "manifest"], VERSION)[0].message  # type: ignore[arg-type]


def test_version_matters() -> None:
    """A kind that only exists from some version on is unknown before it."""
    vap = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {"validations": [{"expression": "true"}]},
    }
    assert validate_manifest(vap, "1.30") == []
    assert "no schema is known" in validate_manifest(vap, "1.29")[0].message


# --- unknown kinds and CRD schemas --------------------------------------------------------------------------------

# a policy kind of a made-up group: hardstack vendors the real Kyverno CRD (tests/test_crds.py)
CLUSTER_POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "validationFailureAction": {"type": "string", "enum": ["Audit", "Enforce"]},
                "background": {"type": "boolean"},
                "webhookTimeoutSeconds": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 30},
                "failurePolicy": {"type": "string", "nullable": True},
                "rules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "maxLength": 63},
                            "match": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "validate": {
                                "type": "object",
                                "properties": {
                                    "message": {"type": "string"},
                                    "pattern": {"x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "weight": {"x-kubernetes-int-or-string": True},
                        },
                    },
                },
            },
            "required": ["rules"],
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def cluster_policy() -> dict[str, Any]:
    return {
        "apiVersion": "policies.example.com/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "require-limits", "labels": {"policies.kyverno.io/category": "best-practices"}},
        "spec": {
            "validationFailureAction": "Enforce",
            "background": True,
            "failurePolicy": None,
            "rules": [
                {
                    "name": "validate-resources",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "validate": {
                        "message": "CPU and memory limits are required.",
                        "pattern": {"spec": {"containers": [{"resources": {"limits": {"memory": "?*"}}}]}},
                    },
                    "weight": "high",
                },
                {"name": "second", "weight": 3},
            ],
        },
    }


@pytest.fixture
def crd_registry():
    """Registrations made by a test are undone after it."""
    made: list[tuple[str, str, str]] = []

    def register(group: str, version: str, kind: str, schema: dict[str, Any]) -> None:
        register_crd_schema(group, version, kind, schema)
        made.append((group, version, kind))

    yield register
    for gvk in made:
        unregister_crd_schema(*gvk)
    unregister_crd_schema("policies.example.com", "v1", "ClusterPolicy")


def test_unknown_kind_is_an_error_until_its_crd_schema_is_registered(crd_registry: Any) -> None:
    [error] = validate_manifest(cluster_policy(), VERSION)
    assert (error.kind, error.name, error.path) == ("ClusterPolicy", "require-limits", "")
    assert "no schema is known" in error.message and "policies.example.com/v1" in error.message

    crd_registry("policies.example.com", "v1", "ClusterPolicy", CLUSTER_POLICY_SCHEMA)
    assert validate_manifest(cluster_policy(), VERSION) == []
    assert validate_manifest(cluster_policy(), "1.25") == []

    bad = cluster_policy()
    bad["spec"]["validationFailureAction"] = "Block"
    bad["spec"]["webhookTimeoutSeconds"] = 60
    bad["spec"]["rules"][0]["weight"] = 1.5
    del bad["spec"]["rules"][1]["name"]
    bad["spec"]["rules"][1]["mutate"] = {}
    bad["metadata"]["labelz"] = {}
    errors = validate_manifest(bad, VERSION)
    assert paths(errors) == [
        "metadata.labelz",
        "spec.rules[0].weight",
        "spec.rules[1].mutate",
        "spec.rules[1].name",
        "spec.validationFailureAction",
        "spec.webhookTimeoutSeconds",
    ]

    other_version = cluster_policy()
    other_version["apiVersion"] = "policies.example.com/v2beta1"
    assert "no schema is known" in validate_manifest(other_version, VERSION)[0].message


def test_crd_schema_pins_api_version_and_kind(crd_registry: Any) -> None:
    crd_registry("policies.example.com", "v1", "ClusterPolicy", CLUSTER_POLICY_SCHEMA)
    no_spec = {"apiVersion": "policies.example.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "p"},
               "spec": {}}
    assert [(e.path, e.message) for e in validate_manifest(no_spec, VERSION)] == [
        ("spec.rules", "required field 'rules' is missing")
    ]


def test_reregistering_replaces_the_schema(crd_registry: Any) -> None:
    crd_registry("policies.example.com", "v1", "ClusterPolicy", CLUSTER_POLICY_SCHEMA)
    assert validate_manifest(cluster_policy(), VERSION) == []  # compiled and cached
    tighter = copy.deepcopy(CLUSTER_POLICY_SCHEMA)
    tighter["properties"]["spec"]["properties"]["background"] = {"type": "string"}
    crd_registry("policies.example.com", "v1", "ClusterPolicy", tighter)
    assert paths(validate_manifest(cluster_policy(), VERSION)) == ["spec.background"]
    unregister_crd_schema("policies.example.com", "v1", "ClusterPolicy")
    assert "no schema is known" in validate_manifest(cluster_policy(), VERSION)[0].message


def test_register_from_a_crd_manifest(crd_registry: Any) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusterpolicies.policies.example.com"},
        "spec": {
            "group": "policies.example.com",
            "names": {"kind": "ClusterPolicy", "plural": "clusterpolicies"},
            "scope": "Cluster",
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": CLUSTER_POLICY_SCHEMA}}
            ],
        },
    }
    assert validate_manifest(crd, VERSION) == []  # the CRD itself is a built-in kind
    assert register_crd(crd) == [("policies.example.com", "v1", "ClusterPolicy")]
    assert validate_manifest(cluster_policy(), VERSION) == []


def test_bad_crd_schemas_are_refused_at_registration() -> None:
    with pytest.raises(ValueError):
        register_crd_schema("", "v1", "Thing", {"type": "object"})
    with pytest.raises(TypeError):
        register_crd_schema("example.com", "v1", "Thing", "not a schema")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid schema for example.com/v1 Thing"):
        register_crd_schema("example.com", "v1", "Thing", {"type": "object", "properties": {"a": {"type": 3}}})
    assert "no schema is known" in validate_manifest(
        {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}}, VERSION
    )[0].message


def test_a_crd_schema_does_not_shadow_a_built_in_kind(crd_registry: Any) -> None:
    crd_registry("apps", "v1", "Deployment", {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    d = deployment()
    d["spec"]["replicas"] = "three"
    assert paths(validate_manifest(d, VERSION)) == ["spec.replicas"]
