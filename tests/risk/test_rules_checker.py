"""The rule checker: invalid rules with their issue codes and positions, and sandbox escapes refused."""

from __future__ import annotations

import pytest

from finloop.core.errors import InvalidRequest
from finloop.risk.rules import (
    ISSUE_CODES,
    MAX_DEPTH,
    MAX_LENGTH,
    RISK_CONTEXT,
    ContextSchema,
    FieldType,
    RuleInvalid,
    check,
    compile_rule,
)

# (expression, code of the first issue, the offending text the issue points at)
INVALID = [
    ("", "empty_expression", None),
    ("   // only a comment", "empty_expression", None),
    ('event.amount > "5"', "type_mismatch", '"5"'),
    ("event.amount > 1.5", "double_not_allowed", "1.5"),
    ("event.amount > 1e3", "double_not_allowed", "1e3"),
    ("event.amount > .5", "double_not_allowed", ".5"),
    ("event.amount > 5u", "unsupported_syntax", "5u"),
    ("event.amount > 99999999999999999999", "int_out_of_range", "99999999999999999999"),
    ("event.amout > 5", "unknown_field", "amout"),
    ("evnt.amount > 5", "unknown_name", "evnt"),
    ("event.amount", "not_boolean", "event"),
    ('event.ip + "x"', "not_boolean", "event"),
    ("event", "not_boolean", "event"),
    ("customer.is_new && event.amount", "type_mismatch", "event.amount"),
    ("!event.amount", "type_mismatch", "event.amount"),
    ("-customer.is_new == 1", "type_mismatch", "customer.is_new"),
    ('event.amount == "5"', "type_mismatch", '"5"'),
    ('"5" == event.amount', "type_mismatch", "event.amount"),
    ("event.amount + event.ip == 1", "type_mismatch", "event.ip"),
    ("event.ip * 2 == 1", "type_mismatch", "event.ip"),
    ("event.amount in lists", "type_mismatch", "event.amount"),
    ("event.amount in event.ip", "type_mismatch", "event.ip"),
    ("features[1] > 0", "type_mismatch", "1"),
    ('features["a"] == true', "type_mismatch", "true"),
    ('lists["a"] == "b"', "type_mismatch", '"a"'),
    ('event["amount"] > 5', "unsupported_syntax", "["),
    ("features.count > 5", "unsupported_syntax", "count"),
    ("event.amount.value > 5", "type_mismatch", "value"),
    ("customer.is_new ? 1 : \"a\"", "type_mismatch", '"a"'),
    ("event.amount ? true : false", "type_mismatch", "event.amount"),
    ("event == customer", "type_mismatch", "event"),
    ("size(event.amount) > 0", "type_mismatch", "event.amount"),
    ("size() > 0", "wrong_arguments", "size"),
    ("lists.size(1) > 0", "wrong_arguments", "size"),
    ('event.ip.startsWith("1", "2")', "wrong_arguments", "startsWith"),
    ('startsWith(event.ip, "1")', "wrong_arguments", "startsWith"),
    ("event.ip.startsWith(1)", "type_mismatch", "1"),
    ('event.amount.startsWith("1")', "type_mismatch", "event.amount"),
    ("event.ip.matches(event.channel)", "pattern_not_literal", "event.channel"),
    ('event.ip.matches("[")', "invalid_pattern", '"["'),
    ('event.ip.matches("(a")', "invalid_pattern", '"(a"'),
    ('event.ip.lowerAscii() == "a"', "unknown_function", "lowerAscii"),
    ('event.ip.startswith("1")', "unknown_function", "startswith"),
    ("has(event.ip)", "unknown_function", "has"),
    ("type(event.amount) == int", "unknown_function", "type"),
    ('dyn(event.amount) == "a"', "unknown_function", "dyn"),
    ('lists.map(x, x + "a") == lists', "unknown_function", "map"),
    ('lists.filter(x, x == "a") == lists', "unknown_function", "filter"),
    ('timestamp("2020-01-01T00:00:00Z") == 1', "unknown_function", "timestamp"),
    ("lists.exists(event, true)", "shadowed_name", "event"),
    ("lists.exists(x, lists.exists(y, true))", "too_complex", "exists(y"),
    ("lists.exists(x, true) && lists.all(x, true) && lists.exists(x, true) && lists.all(x, true)"
     " && lists.exists_one(x, true)", "too_complex", "exists_one"),
    ("lists.exists(x.y, true)", "wrong_arguments", "x.y"),
    ("lists.exists(x, x)", "type_mismatch", "x)"),
    ("event.amount.exists(x, true)", "type_mismatch", "event.amount"),
    ("lists.exists(x)", "wrong_arguments", "exists"),
    ('exists(lists, x, true)', "wrong_arguments", "exists"),
    ("[] == lists", "unsupported_syntax", "[]"),
    ('[1, "a"] == lists', "type_mismatch", '"a"'),
    ('{"a": 1} == features', "unsupported_syntax", "{"),
    ("null == event.ip", "unsupported_syntax", "null"),
    ('b"abc" == event.ip', "unsupported_syntax", 'b"abc"'),
    ('"""abc""" == event.ip', "unsupported_syntax", '"""'),
    ('event.ip == "abc', "unterminated_string", '"abc'),
    ('event.ip == "a\nb"', "unterminated_string", '"a'),
    ('event.ip == "\\d"', "invalid_escape", "\\d"),
    ("event.amount > 5 &", "syntax_error", "&"),
    ("event.amount = 5", "syntax_error", "="),
    ("event.amount > ", "syntax_error", " "),
    ("(event.amount > 5", "syntax_error", "5"),
    ("event.amount > 5)", "syntax_error", ")"),
    ("event.amount >> 5", "syntax_error", ">"),
    ("event.amount > 5 event.hour > 1", "syntax_error", "event.hour"),
    ("event. > 5", "syntax_error", ">"),
    ("!-event.amount", "syntax_error", "-event"),
    ("event.amount > 5 ; true", "syntax_error", ";"),
    ("event.amount > 5 # x", "syntax_error", "#"),
    ("évent.amount > 5", "syntax_error", "évent"),
    ("while == 1", "syntax_error", "while"),
    (".event.amount > 5", "syntax_error", ".event"),
    ("customer.is_new ? true ? 1 : 2 : 3", "syntax_error", "?"),
    ("import os", "syntax_error", "import"),
    ('eval("1 + 1") == 2', "unknown_function", "eval"),
    ('getattr(event, "ip") == ""', "unknown_function", "getattr"),
    ("event.ip.0 == 1", "double_not_allowed", ".0"),
    ("event.ip[0] == \"1\"", "type_mismatch", "["),
]


@pytest.mark.parametrize(("expression", "code", "at"), INVALID, ids=[e for e, _, _ in INVALID])
def test_invalid_rules_have_a_code_and_a_position(expression: str, code: str, at: str | None) -> None:
    issues = check(expression)
    assert issues, expression
    first = issues[0]
    assert first.code == code, issues
    assert first.code in ISSUE_CODES
    if at is not None:
        assert expression[first.position:].startswith(at), (first, expression[first.position:])
    assert 0 <= first.position <= max(len(expression) - 1, 0)
    with pytest.raises(RuleInvalid) as caught:
        compile_rule(expression)
    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.code == "invalid_rule" and caught.value.param == "expression"
    assert caught.value.details["issues"][0] == first.as_dict()


def test_positions_carry_lines_and_columns() -> None:
    expression = 'event.amount > 100\n  && event.ip_contry == "FR"\n  && lists.size() > "1"'
    issues = check(expression)
    assert [(i.code, i.line, i.column) for i in issues] == [("unknown_field", 2, 12), ("type_mismatch", 3, 21)]
    assert expression[issues[0].position:].startswith("ip_contry")
    assert "did you mean 'ip_country'" in issues[0].message
    assert str(issues[0]).startswith("2:12: ")


def test_unknown_names_suggest_the_closest_declared_name() -> None:
    assert "did you mean 'customer'" in check("custmer.age_days > 1")[0].message
    assert "did you mean 'startsWith'" in check('event.ip.startswith("1")')[0].message
    assert "did you mean" not in check("zzz > 1")[0].message


def test_every_issue_is_reported_not_only_the_first() -> None:
    issues = check('event.amout > 5 && customer.age > 1 && event.ip == 3')
    assert [i.code for i in issues] == ["unknown_field", "unknown_field", "type_mismatch"]


def test_rule_invalid_message_names_the_place() -> None:
    with pytest.raises(RuleInvalid) as caught:
        compile_rule('event.amount > "5" && x')
    assert caught.value.message.startswith("invalid rule at line 1, column 16:")
    assert "(and 1 more)" in caught.value.message
    assert len(caught.value.issues) == 2


@pytest.mark.parametrize("expression", [
    "event.__class__ == 1",
    "event.__dict__ == 1",
    "event._secret == 1",
    "__import__ == 1",
    "_ == 1",
    "lists.__class__.__mro__ == 1",
    "lists.exists(__x, true)",
    "event.amount.__class__.__bases__ == 1",
    "event.ip.__len__() == 1",
    'lists[0].__class__ == "str"',
    '__import__("os") == 1',
])
def test_python_internals_are_refused(expression: str) -> None:
    issues = check(expression)
    assert issues and issues[0].code == "forbidden_name"
    with pytest.raises(RuleInvalid):
        compile_rule(expression)


@pytest.mark.parametrize("expression", [
    '"aaaa" * 100000000 == event.ip',  # string repetition does not exist: refused as a type error
    "[1] * 100000000 == [1]",
    'size(lists + lists + lists) > 1000000',  # allowed but bounded by the length limit: a fixed number of copies
])
def test_repetition_cannot_blow_up(expression: str) -> None:
    issues = check(expression)
    if issues:
        assert issues[0].code == "type_mismatch"
    else:
        assert compile_rule(expression).cost < 100


def test_deep_nesting_and_long_expressions_are_refused_before_cel_sees_them() -> None:
    deep = "(" * (MAX_DEPTH + 5) + "true" + ")" * (MAX_DEPTH + 5)
    assert check(deep)[0].code == "too_deep"
    negations = "!" * 5000 + "true"
    assert check(negations)[0].code in ("too_long", "too_deep")
    assert check("!" * (MAX_DEPTH + 5) + "true")[0].code == "too_deep"
    chain = " + ".join(["1"] * (MAX_DEPTH + 5)) + " > 0"
    assert check(chain)[0].code == "too_deep"
    long = " || ".join(["customer.is_new"] * 200)
    assert len(long) > MAX_LENGTH
    issue = check(long)[0]
    assert issue.code == "too_long" and issue.position == MAX_LENGTH
    many = " || ".join(["customer.is_new"] * 100)  # long but flat: fine
    assert len(many) < MAX_LENGTH and check(many) == []
    calls = "lists" + ".exists(a, true) == true" * 3
    assert check(calls)[0].code == "type_mismatch"  # bool has no exists(); no crash on odd chains


def test_huge_list_literals_are_refused() -> None:
    items = ", ".join(['"a"'] * 250)
    assert check(f"event.ip in [{items}]")[0].code == "too_complex"


def test_other_schemas_can_be_checked() -> None:
    schema = ContextSchema({"order.total": FieldType.INT, "order.vip": FieldType.BOOL, "tags": FieldType.MAP_BOOL})
    assert schema["order"]["total"] is FieldType.INT  # type: ignore[index]
    assert check("order.total > 10 && !order.vip && tags[\"x\"]", schema) == []
    assert check("event.amount > 1", schema)[0].code == "unknown_name"
    assert check("order.vip > 1", schema)[0].code == "type_mismatch"
    assert schema.paths() == {"order.total": FieldType.INT, "order.vip": FieldType.BOOL, "tags": FieldType.MAP_BOOL}
    assert RISK_CONTEXT.paths()["event.amount"] is FieldType.INT
    with pytest.raises(ValueError, match="invalid field name"):
        ContextSchema({"__class__": FieldType.INT})
    with pytest.raises(TypeError):
        RISK_CONTEXT["x"] = FieldType.INT  # type: ignore[index]


def test_non_string_expressions_are_an_issue_not_a_crash() -> None:
    assert check(42)[0].code == "syntax_error"  # type: ignore[arg-type]
