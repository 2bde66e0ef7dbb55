"""The shape of a Pulumi AWS (or Vault) resource's inputs as Terraform names them, read from the SDK's input types.

Pulumi names a Terraform list block in the plural (`rules` for `rule`) and its nested types after the singular
block (`...RuleArgs`); a map (`tags`) keeps its keys as they are; everything else is camelCase for snake_case.
"""

from __future__ import annotations

import copy

import functools
import importlib
import inspect
import keyword
import re
from dataclasses import dataclass
from typing import Any

_ARGS = re.compile(r"ForwardRef\('(\w+Args)'\)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

TERRAFORM_NAME_OVERRIDES: dict[tuple[str, str], str] = {
    ("aws_launch_template", "block_device_mappings"): "block_device_mappings",
    ("aws_launch_template", "network_interfaces"): "network_interfaces",
    ("aws_launch_template", "tag_specifications"): "tag_specifications",
    ("aws_launch_template", "license_specifications"): "license_specification",
    ("aws_launch_template", "elastic_gpu_specifications"): "elastic_gpu_specifications",
    ("aws_lambda_function", "name"): "function_name",
    ("aws_wafv2_web_acl_logging_configuration", "redacted_fields"): "redacted_fields",
    **{("TrailAdvancedEventSelectorFieldSelector", f"{op}s"): op
       for op in ("starts_with", "not_starts_with", "ends_with", "not_ends_with")},
}
"""Fields whose Terraform name differs from the Pulumi one by more than case: blocks whose Terraform name is
plural already (Pulumi's type name is singular), and renamed attributes; keyed by the Terraform resource type, or
for a field of a nested block by the block's Pulumi type name (without `Args`)."""


@dataclass(frozen=True)
class Field:
    tf_name: str
    kind: str  # "value" | "map" | "block" | "blocks"
    args_class: str | None = None


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def package_of(token: str) -> str:
    """The Python package of a type token's module: `aws:lambda/function:Function` → pulumi_aws.lambda_,
    `vault:index/policy:Policy` → pulumi_vault."""
    root = f"pulumi_{token.split(':')[0]}"
    module = token.split(":")[1].split("/")[0]
    if module == "index":
        return root
    return f"{root}.{module}_" if keyword.iskeyword(module) else f"{root}.{module}"


@functools.lru_cache(maxsize=None)
def resource_fields(token: str, tf_type: str) -> dict[str, Field]:
    """Input name (as in the inventory, camelCase) → Terraform field, for an `aws:*` or `vault:*` type token."""
    file_part = token.split(":")[1].split("/")[1]
    class_name = token.rsplit(":", 1)[1]
    package = package_of(token)
    try:  # the resource's own file: the package namespace may hold a same-named nested type
        module = importlib.import_module(f"{package}.{snake(file_part)}")
    except ImportError:
        return {}
    args_cls = getattr(module, f"{class_name}InitArgs", None) or getattr(module, f"{class_name}Args", None)
    if args_cls is None:
        return {}
    return _fields(args_cls, class_name, package, tf_type)


@functools.lru_cache(maxsize=None)
def block_fields(package: str, args_class: str) -> dict[str, Field]:
    inputs = importlib.import_module(f"{package}._inputs")
    cls = getattr(inputs, args_class, None)
    if cls is None:
        return {}
    return _fields(cls, args_class.removesuffix("Args"), package, None)


def _fields(args_cls: type, prefix: str, package: str, tf_type: str | None) -> dict[str, Field]:
    pulumi_names = {
        name: getattr(member.fget, "_pulumi_name", name)
        for name, member in inspect.getmembers(args_cls)
        if isinstance(member, property)
    }
    fields: dict[str, Field] = {}
    tf_type = tf_type or prefix  # a nested block's overrides are keyed by its type name
    for param in list(inspect.signature(args_cls.__init__).parameters.values())[1:]:
        text = repr(param.annotation)
        camel = pulumi_names.get(param.name, param.name)
        nested = _ARGS.search(text)
        if nested:
            inner = nested.group(1)
            singular = inner.removesuffix("Args")
            singular = snake(singular[len(prefix):]) if singular.startswith(prefix) and singular != prefix else None
            is_list = "Sequence[" in text.split(inner)[0]
            kind = "blocks" if is_list else "block"
            tf_name = singular if (is_list and singular) else param.name
            if tf_type and (tf_type, param.name) in TERRAFORM_NAME_OVERRIDES:
                tf_name = TERRAFORM_NAME_OVERRIDES[(tf_type, param.name)]
            fields[camel] = Field(tf_name, kind, inner)
        elif "Mapping[" in text:
            fields[camel] = Field(param.name, "map")
        else:
            fields[camel] = Field(param.name, "value")
        if tf_type and (tf_type, param.name) in TERRAFORM_NAME_OVERRIDES and fields[camel].kind == "value":
            fields[camel] = Field(TERRAFORM_NAME_OVERRIDES[(tf_type, param.name)], "value")
    return fields


def to_terraform(value: dict[str, Any], fields: dict[str, Field], package: str) -> dict[str, Any]:
    """Inventory inputs → Terraform attribute values (blocks list-wrapped, as in a plan)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key) or Field(snake(key), "map" if isinstance(item, dict) else "value")
        out[field.tf_name] = convert(item, field, package)
    return out


def convert(item: Any, field: Field, package: str) -> Any:
    if not isinstance(item, (dict, list)):  # e.g. a policy given as a JSON string where a document type is allowed
        return item
    if field.kind in ("block", "blocks") and field.args_class:
        inner = block_fields(package, field.args_class)
        items = item if isinstance(item, list) else [item]
        return [to_terraform(i, inner, package) if isinstance(i, dict) else i for i in items]
    return copy.deepcopy(item)  # the plan's own copy: references are written into it, never into the inventory
