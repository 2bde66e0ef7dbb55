"""What every hardstack component shares: its type token, its tags, options for its children."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import pulumi

STACK_TAG = "hardstack:stack"
COMPONENT_TAG = "hardstack:component"


def component_tags(component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every AWS resource of a component carries: the declared ones plus stack and component."""
    return {**(extra or {}), STACK_TAG: pulumi.get_stack(), COMPONENT_TAG: component}


class HardenedComponent(pulumi.ComponentResource):
    """Base of hardstack's components. Subclasses keep the type token (and so their URNs) unless they set
    their own `TYPE`."""

    TYPE: ClassVar[str]

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
