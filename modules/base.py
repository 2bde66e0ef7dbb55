"""What every hardstack component shares: its type token, its tags, options for its children."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import pulumi

STACK_TAG = "hardstack:stack"
COMPONENT_TAG = "hardstack:component"


def component_tags(component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every AWS resource of a component carries: the declared ones plus stack and component."""
    return {**(extra or {}), STACK_TAG: pulumi.get_stack(), COMPONENT_TAG: component}


@dataclass(frozen=True)
class DesignException:
    """A check a component's child fails because AWS offers nothing stricter: the gate marks it skipped with this
    reason (owner: hardstack, by design) in every report, for that child of that component only."""

    check: str
    resource_type: str  # the Pulumi type token of the child that fails the check
    reason: str


COMPONENT_TYPES: dict[str, type["HardenedComponent"]] = {}
"""Every hardstack component class by its type token."""


class HardenedComponent(pulumi.ComponentResource):
    """Base of hardstack's components. Subclasses keep the type token (and so their URNs) unless they set
    their own `TYPE`."""

    TYPE: ClassVar[str]
    DESIGN_EXCEPTIONS: ClassVar[tuple[DesignException, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            COMPONENT_TYPES[cls.TYPE] = cls

    def __init__(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(self.TYPE, name, dict(props or {}), opts)
        self.component_name = name
        self.tags = component_tags(name, tags)
        self.declared_tags = dict(tags or {})

    def child_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)


_DEPLOYMENT: dict[int, tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]] = {}


def account_and_partition() -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
    """The account id, partition and region the provider deploys to (used in policies); looked up once per
    program run, not once per component."""
    import pulumi_aws as aws
    from pulumi.runtime.settings import get_monitor

    run = id(get_monitor())
    if run not in _DEPLOYMENT:
        _DEPLOYMENT.clear()
        _DEPLOYMENT[run] = (
            aws.get_caller_identity_output().account_id,
            aws.get_partition_output().partition,
            aws.get_region_output().region,
        )
    return _DEPLOYMENT[run]


_stand_ins: list[str] | None = None


def deploy_secret(key: str) -> pulumi.Output[str]:
    """The stack config secret `hardstack:<key>` (`pulumi config set --secret hardstack:<key>`).

    During synthesis a secret the stack has not set yet is stood in by `[secret]`: synthesis never needs a
    secret's value, and `pulumi up` refuses to run without it."""
    config = pulumi.Config("hardstack")
    if _stand_ins is not None and config.get(key) is None:
        _stand_ins.append(f"hardstack:{key}")
        return pulumi.Output.secret("[secret]")
    return config.require_secret(key)


@contextlib.contextmanager
def standing_in_secrets() -> Iterator[list[str]]:
    """Within: missing deploy secrets are stood in; yields the keys that were."""
    global _stand_ins
    previous, _stand_ins = _stand_ins, []
    try:
        yield _stand_ins
    finally:
        _stand_ins = previous
