"""Every hardstack check, found in policies/checks/: its metadata and its fixtures."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import checks as checks_package
from .meta import CheckMeta


@dataclass(frozen=True)
class CheckEntry:
    meta: CheckMeta
    module: ModuleType
    graph: bool

    @property
    def passing(self) -> dict[str, Callable[[], None]]:
        return {n: f for n, f in vars(self.module).items() if n.startswith("passing_") and callable(f)}

    @property
    def failing(self) -> dict[str, Callable[[], None]]:
        return {n: f for n, f in vars(self.module).items() if n.startswith("failing_") and callable(f)}


@functools.lru_cache(maxsize=1)
def hardstack_checks() -> dict[str, CheckEntry]:
    """hardstack's checks by ID, in ID order. Importing them registers the Python ones with checkov."""
    from .engine import CHECKS_DIR

    found: dict[str, CheckEntry] = {}
    for info in pkgutil.iter_modules(checks_package.__path__):
        module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
        meta = getattr(module, "META", None)
        if isinstance(meta, CheckMeta):
            if meta.id in found:
                raise ValueError(f"duplicate check ID {meta.id}")
            found[meta.id] = CheckEntry(meta, module, (CHECKS_DIR / f"{info.name}.yaml").exists())
    return dict(sorted(found.items()))


def non_waivable() -> dict[str, str]:
    """Check IDs that no exception can waive, with the reason."""
    from .exceptions import NON_WAIVABLE_CHECKOV

    out = dict(NON_WAIVABLE_CHECKOV)
    for check_id, entry in hardstack_checks().items():
        if not entry.meta.waivable:
            out[check_id] = entry.meta.title
    return out
