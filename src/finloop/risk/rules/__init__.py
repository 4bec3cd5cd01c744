"""The rule language: CEL expressions checked against a declared, typed context.

Public API: `FieldType`, `ContextSchema`, `RISK_CONTEXT`, `EvaluationContext`, `make_context`,
`RuleIssue`, `check`, `RuleInvalid`, `compile_rule`, `CompiledRule`, `RuleResult`, and the limits.
"""

from finloop.risk.rules.checker import (
    ISSUE_CODES,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_MACROS,
    MAX_NODES,
    RuleIssue,
    check,
)
from finloop.risk.rules.engine import CompiledRule, RuleInvalid, RuleResult, compile_rule
from finloop.risk.rules.schema import (
    RISK_CONTEXT,
    ContextSchema,
    EvaluationContext,
    FieldType,
    make_context,
)

__all__ = [
    "ISSUE_CODES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_MACROS",
    "MAX_NODES",
    "RISK_CONTEXT",
    "CompiledRule",
    "ContextSchema",
    "EvaluationContext",
    "FieldType",
    "RuleInvalid",
    "RuleIssue",
    "RuleResult",
    "check",
    "compile_rule",
    "make_context",
]
