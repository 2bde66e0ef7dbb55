"""The one root of every error hardstack reports, and the exit codes they map to.

Exit codes (documented in the README):
    0  passed
    1  violations found by the gate
    2  invalid input or usage (blueprint, stack file, program, command line)
    3  the gate could not run: nothing was verified (fail closed)
    4  a tool hardstack drives is missing or failed (the Pulumi CLI for up, preview, destroy)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_INVALID = 2
EXIT_NOT_VERIFIED = 3
EXIT_TOOL = 4


class HardstackError(Exception):
    """Root of every error hardstack raises on purpose; carries its exit code."""

    exit_code = EXIT_INVALID


class InvalidInput(HardstackError):
    """Input that hardstack refuses: says where, what was received and what is allowed."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        received: object = None,
        allowed: str | None = None,
    ) -> None:
        self.file, self.line, self.field = file, line, field
        self.received, self.allowed = received, allowed
        self.problem = message
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [f"{where}: " if where else ""]
        if self.field:
            parts.append(f"{self.field}: ")
        parts.append(self.problem)
        if self.received is not None:
            parts.append(f" (received {self.received!r})")
        if self.allowed:
            parts.append(f"; allowed: {self.allowed}")
        return "".join(parts)


class InvalidInputs(HardstackError):
    """Several invalid inputs found in one pass, reported together."""

    def __init__(self, errors: list[InvalidInput]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))


class SynthError(HardstackError):
    """A program could not be synthesized (it raised, or its project is malformed)."""


class GateError(HardstackError):
    """The gate could not run; the stack is not verified."""

    exit_code = EXIT_NOT_VERIFIED


class ToolError(HardstackError):
    """A tool hardstack drives is missing or failed (after the gate: nothing was applied by hardstack)."""

    exit_code = EXIT_TOOL
