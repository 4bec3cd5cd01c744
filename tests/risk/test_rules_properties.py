"""Properties of the checker and the engine over generated expressions and contexts."""

from __future__ import annotations

import functools
from typing import Any

import cel
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.risk.rules import MAX_LENGTH, RISK_CONTEXT, check, compile_rule, make_context

INT_FIELDS = ["event.amount", "event.hour", "customer.age_days"]
STRING_FIELDS = ["event.type", "event.currency", "event.method", "event.channel", "event.ip", "event.ip_country",
                 "event.card_country", "customer.segment", "customer.country", "device.id", "event.customer_id"]
BOOL_FIELDS = ["customer.is_new", "device.is_new"]
KEYS = ["customer.count.1h", "ip.count.10m", "fraud", "x"]
PATTERNS = ['"^1"', 'r"\\d+$"', '"(?i)card"', '"a|b"']
# a runtime error of one of these kinds is an expected outcome; anything else is a bug
RUNTIME_ERRORS = ("KeyError", "ZeroDivisionError", "OverflowError", "IndexError")

SETTINGS = settings(max_examples=60, deadline=None)

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
small_ints = st.integers(min_value=-5, max_value=1_000_000)
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


def _cel_string(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _leaf(kind: str) -> st.SearchStrategy[str]:
    if kind == "int":
        return st.one_of(small_ints.map(str), st.sampled_from(INT_FIELDS),
                         st.sampled_from(KEYS).map(lambda k: f'features["{k}"]'),
                         st.sampled_from(KEYS).map(lambda k: f'model["{k}"]'),
                         st.sampled_from(["size(lists)", "event.ip.size()", "size(features)"]))
    if kind == "string":
        return st.one_of(texts.map(_cel_string), st.sampled_from(STRING_FIELDS), st.just("lists[0]"))
    return st.one_of(st.sampled_from(["true", "false", *BOOL_FIELDS]))


@functools.cache
def _expr(kind: str, depth: int, macros: bool = True) -> st.SearchStrategy[str]:
    if depth <= 0:
        return _leaf(kind)

    def sub(k: str) -> st.SearchStrategy[str]:
        return _expr(k, depth - 1, macros)

    def body() -> st.SearchStrategy[str]:  # macros cannot be nested
        return _expr("bool", depth - 1, False)

    if kind == "int":
        return st.one_of(
            _leaf(kind),
            st.tuples(sub("int"), st.sampled_from(["+", "-", "*", "/", "%"]), sub("int")).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            sub("int").map(lambda e: f"-({e})"),
            st.tuples(sub("bool"), sub("int"), sub("int")).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        )
    if kind == "string":
        return st.one_of(
            _leaf(kind),
            st.tuples(sub("string"), sub("string")).map(lambda t: f"({t[0]} + {t[1]})"),
            st.tuples(sub("bool"), sub("string"), sub("string")).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        )
    options = [
        _leaf(kind),
        st.tuples(sub("int"), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), sub("int")).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub("string"), st.sampled_from(["<", "==", "!="]), sub("string")).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub("bool"), st.sampled_from(["&&", "||", "==", "!="]), sub("bool")).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub("bool").map(lambda e: f"!({e})"),
        st.tuples(sub("string"), st.sampled_from(["startsWith", "endsWith", "contains"]), sub("string")).map(
            lambda t: f"{t[0]}.{t[1]}({t[2]})"),
        st.tuples(sub("string"), st.sampled_from(PATTERNS)).map(lambda t: f"{t[0]}.matches({t[1]})"),
        st.tuples(sub("string"), st.lists(_leaf("string"), min_size=1, max_size=3)).map(
            lambda t: f"({t[0]} in [{', '.join(t[1])}])"),
        sub("string").map(lambda e: f"({e} in lists)"),
        sub("string").map(lambda e: f"({e} in features)"),
    ]
    if macros:
        options += [
            st.tuples(st.sampled_from(["exists", "all", "exists_one"]), body()).map(
                lambda t: f"lists.{t[0]}(it, it.startsWith(\"black:\") || {t[1]})"),
            body().map(lambda e: f"features.exists(k, k.endsWith(\".1h\") && {e})"),
        ]
    return st.one_of(options)


expressions = st.one_of([_expr("bool", d) for d in range(4)])

contexts = st.fixed_dictionaries({
    "event": st.fixed_dictionaries({
        "amount": ints, "hour": st.integers(min_value=-1, max_value=24), "ip": texts,
        "ip_country": st.sampled_from(["", "CN", "US"]), "card_country": st.sampled_from(["", "CN", "RU"]),
        "type": st.sampled_from(["payment", "refund"]),
    }),
    "customer": st.fixed_dictionaries({"age_days": ints, "is_new": st.booleans(), "segment": texts}),
    "device": st.fixed_dictionaries({"is_new": st.booleans()}),
    "features": st.dictionaries(st.sampled_from(KEYS), ints, max_size=4),
    "model": st.dictionaries(st.sampled_from(KEYS), st.integers(min_value=0, max_value=1000), max_size=2),
    "lists": st.lists(st.sampled_from(["black:ip", "white:customer", "grey:card"]), max_size=3, unique=True),
})


@SETTINGS
@given(expression=expressions, values=contexts)
def test_accepted_expressions_compile_and_evaluate_without_raising(expression: str, values: dict[str, Any]) -> None:
    assert check(expression) == [], check(expression)
    rule = compile_rule(expression)
    ctx = make_context(values)
    fired = rule.evaluate(ctx)
    assert isinstance(fired, bool)
    if rule.last_error is not None:
        assert fired is False
        assert rule.last_error.startswith(RUNTIME_ERRORS), rule.last_error
    assert rule.cost > 0


TOKENS = st.sampled_from([
    "event", "customer", "device", "features", "lists", "model", ".", "amount", "ip", "is_new", "hour",
    "age_days", "size", "startsWith", "matches", "exists", "all", "x", "(", ")", "[", "]", ",", "!", "-", "+",
    "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "in", "&&", "||", "?", ":", "0", "12", "1.5", "true",
    "false", "null", '"a"', "'b'", 'r"\\d"', '"\\n"', '"', "__class__", "{", "}", "#", " ", "\n", "1u", "é",
    "// c\n", "=", "&", "9223372036854775808", "0x1F", "0X1", "'", "r", "\\",
])


@SETTINGS
@given(parts=st.lists(TOKENS, max_size=25))
def test_checker_never_crashes_and_accepts_only_what_cel_compiles(parts: list[str]) -> None:
    expression = "".join(parts)
    issues = check(expression)
    for issue in issues:
        assert 0 <= issue.position < max(len(expression), 1)
        assert issue.line == expression.count("\n", 0, issue.position) + 1
        assert issue.column >= 1
    if not issues:
        program = cel.compile(expression)  # the checker accepts a subset of CEL
        assert program.source == expression


@SETTINGS
@given(text=st.text(max_size=60))
def test_positions_point_inside_any_text(text: str) -> None:
    for issue in check(text):
        assert 0 <= issue.position < max(len(text), 1)
        prefix = text[:issue.position]
        assert issue.line == prefix.count("\n") + 1
        assert issue.column == issue.position - (prefix.rfind("\n") + 1) + 1


@SETTINGS
@given(expression=expressions)
def test_cost_is_static_and_grows_with_the_expression(expression: str) -> None:
    rule = compile_rule(expression)
    both = compile_rule(f"({expression}) && ({expression})")
    assert both.cost > rule.cost and compile_rule(expression).cost == rule.cost
    assert len(expression) <= MAX_LENGTH
    assert RISK_CONTEXT["lists"] == "list_string"
