"""The registry and endpoint settings: what a blueprint must declare, and errors that point at file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardstack.blueprints.endpoints import EndpointSpec
from hardstack.blueprints.loader import catalog, load
from hardstack.blueprints.supply_chain import RegistrySpec
from hardstack.errors import InvalidInput, InvalidInputs

DIGEST = "@sha256:" + "ab" * 32
CI = {"oidc_provider_arn": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
      "subjects": ["repo:acme/images:ref:refs/heads/main"]}
JWT = {"kind": "jwt", "issuer": "https://idp.example.com", "jwks_endpoint": "https://idp.example.com/jwks",
       "audience": "chat"}


def shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load(catalog()[name].read_text())


def errors(tmp_path: Path, data: dict[str, Any]) -> list[InvalidInput]:
    path = tmp_path / "bp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    return exc.value.errors


def test_a_cluster_needs_the_signed_registry(tmp_path: Path) -> None:
    data = shipped("llm-inference")
    del data["registry"]
    (err,) = errors(tmp_path, data)
    assert err.field == "registry" and "declare registry" in str(err)


def test_registry_error_points_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bp.yaml"
    path.write_text(textwrap.dedent("""\
        name: demo
        region: us-east-1
        registry:
          repositories: [models, models]
          ci:
            oidc_provider_arn: arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com
            subjects: ["repo:acme/*"]
        """))
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    found = {(e.field, e.line) for e in exc.value.errors}
    assert ("registry.repositories", 4) in found
    assert ("registry.ci.subjects[0]", 7) in found  # wildcards in a trusted subject are refused


def test_agent_images_come_from_the_stack_registry(tmp_path: Path) -> None:
    data = shipped("agent-sandbox")
    data["agents"][0]["image"] = f"elsewhere{DIGEST}"
    (err,) = errors(tmp_path, data)
    assert err.field == "agents" and "'elsewhere' is not in the stack's registry" in str(err)
    assert "support-triage" in str(err)  # what is allowed


def test_proxy_image_through_an_allowlisted_cache_only(tmp_path: Path) -> None:
    data = shipped("agent-sandbox")
    data["agent_egress_proxy"]["image"] = f"ecr-public/someone/squid{DIGEST}"
    (err,) = errors(tmp_path, data)
    assert err.field == "agent_egress_proxy" and "ecr-public/ubuntu/squid" in str(err)


@pytest.mark.parametrize("image, allowed", [
    (f"models{DIGEST}", True),
    (f"ecr-public/nvidia/cuda{DIGEST}", True),
    (f"ecr-public/nvidia{DIGEST}", False),
    (f"quay/nvidia/cuda{DIGEST}", False),
    (f"other{DIGEST}", False),
])
def test_source_of(image: str, allowed: bool) -> None:
    spec = RegistrySpec(repositories=["models"], ci=CI, pull_through=[{"upstream": "ecr-public", "allow": ["nvidia/*"]}])
    assert (spec.source_of(image) is None) is allowed


@pytest.mark.parametrize("image", ["models:latest", "models", f"registry.example.com:5000/models{DIGEST}"])
def test_images_by_digest_in_the_registry_only(tmp_path: Path, image: str) -> None:
    data = shipped("agent-sandbox")
    data["agents"][0]["image"] = image
    (err,) = errors(tmp_path, data)
    assert err.field == "agents[0].image" and err.received == image


def test_pull_through_prefixes_are_not_repository_names() -> None:
    with pytest.raises(ValueError, match="pull-through prefixes"):
        RegistrySpec(repositories=["quay"], ci=CI)


def _endpoint(**changes: Any) -> dict[str, Any]:
    return {"name": "chat", "tenant": "serving", "service": "llm", "port": 8000, "domain_name": "chat.example.com",
            "zone_id": "Z0EXAMPLE", "scheme": "internet-facing", "auth": JWT, **changes}


def test_endpoint_needs_exactly_one_certificate_source() -> None:
    with pytest.raises(ValueError, match="exactly one of zone_id"):
        EndpointSpec(**_endpoint(certificate_arn="arn:aws:acm:us-east-1:111122223333:certificate/abc"))
    with pytest.raises(ValueError, match="exactly one of zone_id"):
        EndpointSpec(**_endpoint(zone_id=None))


def test_authentication_is_never_optional(tmp_path: Path) -> None:
    data = shipped("llm-inference")
    del data["endpoints"][0]["auth"]
    (err,) = errors(tmp_path, data)
    assert err.field == "endpoints[0].auth" and "required" in str(err).lower()


def test_unknown_auth_kind_names_the_allowed_ones(tmp_path: Path) -> None:
    data = shipped("llm-inference")
    data["endpoints"][0]["auth"] = {"kind": "none"}
    (err,) = errors(tmp_path, data)
    assert err.field.startswith("endpoints[0].auth") and "oidc" in str(err) and "mtls" in str(err)


def test_endpoint_serves_a_declared_tenant(tmp_path: Path) -> None:
    data = shipped("llm-inference")
    data["endpoints"][0]["tenant"] = "nobody"
    (err,) = errors(tmp_path, data)
    assert err.field == "endpoints" and "undeclared tenant 'nobody'" in str(err) and "serving" in str(err)


def test_duplicate_endpoints_are_refused(tmp_path: Path) -> None:
    data = shipped("llm-inference")
    data["endpoints"].append(dict(data["endpoints"][0], domain_name="other.example.com"))
    (err,) = errors(tmp_path, data)
    assert err.field == "endpoints" and "duplicate endpoint names ['chat']" in str(err)


def test_waf_body_limit_is_what_the_waf_can_inspect() -> None:
    with pytest.raises(ValueError):
        EndpointSpec(**_endpoint(waf={"max_body_kb": 64}))


def test_oidc_endpoints_name_their_client_secret() -> None:
    oidc = {"kind": "oidc", "issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/a",
            "token_endpoint": "https://idp.example.com/t", "user_info_endpoint": "https://idp.example.com/u",
            "client_id": "chat"}
    assert EndpointSpec(**_endpoint(auth=oidc)).client_secret_config == "oidcClientSecret-chat"
    assert EndpointSpec(**_endpoint()).client_secret_config is None


def test_shipped_endpoint_defaults_are_the_strict_ones() -> None:
    spec = load("llm-inference").blueprint.endpoints[0]
    assert spec.scheme == "internal" and spec.auth.kind == "mtls"
    assert spec.waf.max_body_kb == 8 and spec.waf.log_retention_days >= 365


@pytest.mark.parametrize("auth", [JWT, {"kind": "oidc", "issuer": "https://idp.example.com",
                                        "authorization_endpoint": "https://idp.example.com/a",
                                        "token_endpoint": "https://idp.example.com/t",
                                        "user_info_endpoint": "https://idp.example.com/u", "client_id": "chat"}])
def test_internal_endpoints_cannot_reach_an_identity_provider(auth: dict[str, Any]) -> None:
    """An internal load balancer has no route out: it cannot fetch an issuer's keys nor exchange codes."""
    with pytest.raises(ValueError, match="allowed: auth kind mtls for an internal endpoint"):
        EndpointSpec(**_endpoint(scheme="internal", auth=auth))
    assert EndpointSpec(**_endpoint(scheme="internal", auth={"kind": "mtls", "ca_bundle": "s3://pki-bucket/ca.pem"}))
