"""Compile checked rules once and evaluate them against the decision's shared context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cel

from finloop.core.errors import InvalidRequest
from finloop.risk.rules.checker import RuleIssue, analyse, cost
from finloop.risk.rules.schema import RISK_CONTEXT, ContextSchema, EvaluationContext


class RuleInvalid(InvalidRequest):
    """A rule expression failed the checker; `details["issues"]` lists every issue with its position."""

    code = "invalid_rule"

    def __init__(self, issues: list[RuleIssue]) -> None:
        first = issues[0]
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(f"invalid rule at line {first.line}, column {first.column}: {first.message}{more}",
                         param="expression", details={"issues": [i.as_dict() for i in issues]})
        self.issues = issues


@dataclass(frozen=True, slots=True)
class RuleResult:
    """The outcome of one evaluation: `fired` is False whenever `error` is set."""

    fired: bool
    error: str | None = None


class CompiledRule:
    """A checked expression compiled once with `cel.compile`; evaluate it as often as needed.

    `evaluate` never raises: a runtime error (a missing map key, a division by zero, an overflow, an
    index out of range) makes the rule not fire, and the error is kept in `last_error` (use `run` for a
    per-call result that does not depend on shared state).
    """

    __slots__ = ("cost", "expression", "last_error", "program", "schema")

    def __init__(self, expression: str, schema: ContextSchema, program: cel.Program, cost: int) -> None:
        self.expression = expression
        self.schema = schema
        self.program = program
        self.cost = cost
        self.last_error: str | None = None

    def run(self, context: EvaluationContext) -> RuleResult:
        try:
            value: Any = self.program.execute(context.cel)
        except Exception as exc:  # noqa: BLE001 - a rule's runtime error must never escape into a decision
            return RuleResult(False, f"{type(exc).__name__}: {exc}"[:500])
        if value is True:
            return RuleResult(True)
        if value is False:
            return RuleResult(False)
        return RuleResult(False, f"rule returned {type(value).__name__}, not bool")  # pragma: no cover

    def evaluate(self, context: EvaluationContext) -> bool:
        result = self.run(context)
        self.last_error = result.error
        return result.fired

    def __repr__(self) -> str:
        return f"CompiledRule({self.expression!r}, cost={self.cost})"


def compile_rule(expression: str, schema: ContextSchema = RISK_CONTEXT) -> CompiledRule:
    """Check `expression` against `schema` and compile it; raises `RuleInvalid` listing every issue."""
    tree, issues = analyse(expression, schema)
    if issues:
        raise RuleInvalid(issues)
    assert tree is not None
    try:
        program = cel.compile(expression)
    except Exception as exc:
        raise RuleInvalid([RuleIssue("syntax_error", f"CEL refused the expression: {str(exc)[:300]}", 0, 1, 1)]) \
            from exc
    return CompiledRule(expression, schema, program, cost(tree))
