"""A parser and type checker for the CEL subset risk rules may use.

The `cel` package evaluates CEL but does not type-check it, and accepts far more than rules need.
This module parses an expression into a small AST with its own recursive-descent parser, refuses
everything outside a whitelist, and type-checks the rest against a `ContextSchema`. Every issue
carries the 0-based offset of the offending token and its 1-based line and column.

Accepted: int, string and bool literals, list literals; identifiers and member access on the declared
context; map and list indexing; `!`, unary `-`; `* / %`; `+ -`; `< <= > >= == !=`; `in`; `&&`; `||`;
`? :`; `size()`, `startsWith`, `endsWith`, `contains`, `matches` (literal pattern), and the
`exists`, `all`, `exists_one` macros over lists and maps. Refused: doubles, uints, bytes, null, map
literals, every other function, access to names starting with `_`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cel

from finloop.risk.rules.schema import INT64_MAX, RISK_CONTEXT, ContextSchema, FieldType

MAX_LENGTH = 2000  # characters in an expression
MAX_DEPTH = 40  # nesting of the syntax tree (`a && b && c` counts once)
MAX_NODES = 400  # nodes in the syntax tree
MAX_PATTERN_LENGTH = 256  # characters in a `matches` pattern
MAX_LIST_LITERAL = 200  # items in a list literal
MAX_MACROS = 4  # exists / all / exists_one per rule; they cannot be nested (n^k iterations)

RESERVED = frozenset({
    "as", "break", "const", "continue", "else", "false", "for", "function", "if", "import", "in", "let",
    "loop", "package", "namespace", "null", "return", "true", "var", "void", "while",
})
MACROS = ("exists", "all", "exists_one")
FUNCTIONS = ("size", "startsWith", "endsWith", "contains", "matches", *MACROS)
ISSUE_CODES = (
    "empty_expression", "too_long", "too_deep", "too_complex", "syntax_error", "unterminated_string",
    "invalid_escape", "int_out_of_range", "double_not_allowed", "unsupported_syntax", "unknown_name",
    "unknown_field", "forbidden_name", "shadowed_name", "unknown_function", "wrong_arguments",
    "type_mismatch", "not_boolean", "pattern_not_literal", "invalid_pattern",
)


@dataclass(frozen=True, slots=True)
class RuleIssue:
    code: str
    message: str
    position: int
    line: int
    column: int

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "position": self.position,
                "line": self.line, "column": self.column}

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message} [{self.code}]"


class _Stop(Exception):
    """A syntax error: parsing cannot go on."""

    def __init__(self, code: str, message: str, position: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position


# ---------------------------------------------------------------------------------------- lexer

@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # int | string | ident | op | eof
    text: str
    pos: int
    value: Any = None


_OPS2 = ("&&", "||", "==", "!=", "<=", ">=")
_OPS1 = "+-*/%<>!?:()[].,"
_SIMPLE_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "`": "`", "?": "?", "n": "\n", "r": "\r", "t": "\t",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")


def _lex(src: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n\f":
            i += 1
            continue
        if src.startswith("//", i):
            end = src.find("\n", i)
            i = n if end < 0 else end
            continue
        if c.isascii() and (c.isalpha() or c == "_"):
            j = i
            while j < n and src[j].isascii() and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in ("r", "R") and j < n and src[j] in "\"'":
                i = _lex_string(src, j, tokens, raw=True, start=i)
                continue
            if word in ("b", "B", "rb", "rB", "Rb", "RB", "br", "bR", "Br", "BR") and j < n and src[j] in "\"'":
                raise _Stop("unsupported_syntax", "bytes literals are not supported", i)
            tokens.append(Token("ident", word, i))
            i = j
            continue
        if c in _DIGITS:
            i = _lex_number(src, i, tokens)
            continue
        if c == "." and i + 1 < n and src[i + 1] in _DIGITS:
            raise _Stop("double_not_allowed",
                        "doubles are not allowed: amounts are integers of minor units", i)
        if c in "\"'":
            i = _lex_string(src, i, tokens, raw=False, start=i)
            continue
        two = src[i:i + 2]
        if two in _OPS2:
            tokens.append(Token("op", two, i))
            i += 2
            continue
        if c in _OPS1:
            tokens.append(Token("op", c, i))
            i += 1
            continue
        if c in "{}":
            raise _Stop("unsupported_syntax", "map literals are not supported", i)
        if c in "&|=":
            raise _Stop("syntax_error", f"unexpected '{c}' (did you mean '{c * 2}'?)", i)
        raise _Stop("syntax_error", f"unexpected character {c!r}", i)
    tokens.append(Token("eof", "", n))
    return tokens


def _lex_number(src: str, i: int, tokens: list[Token]) -> int:
    n = len(src)
    j = i
    if src.startswith("0x", i):  # CEL accepts a lower-case prefix only
        j = i + 2
        while j < n and src[j] in _HEX:
            j += 1
        if j == i + 2:
            raise _Stop("syntax_error", "malformed hexadecimal integer", i)
        value = int(src[i + 2:j], 16)
    else:
        while j < n and src[j] in _DIGITS:
            j += 1
        if j < n and (src[j] in "eE" or (src[j] == "." and j + 1 < n and src[j + 1] in _DIGITS)):
            raise _Stop("double_not_allowed",
                        "doubles are not allowed: amounts are integers of minor units", i)
        value = int(src[i:j])
    if j < n and src[j] in "uU":
        raise _Stop("unsupported_syntax", "unsigned integers are not supported; use a plain int", i)
    if j < n and (src[j].isalnum() or src[j] == "_"):
        raise _Stop("syntax_error", f"malformed number {src[i:j + 1]!r}", i)
    if value > INT64_MAX + 1:
        raise _Stop("int_out_of_range", "integer literal out of the 64-bit range", i)
    tokens.append(Token("int", src[i:j], i, value))
    return j


def _lex_string(src: str, i: int, tokens: list[Token], *, raw: bool, start: int) -> int:
    n = len(src)
    quote = src[i]
    if src.startswith(quote * 3, i):
        raise _Stop("unsupported_syntax", "triple-quoted strings are not supported", start)
    j = i + 1
    out: list[str] = []
    while True:
        if j >= n or src[j] == "\n":
            raise _Stop("unterminated_string", "unterminated string literal", start)
        c = src[j]
        if c == quote:
            j += 1
            break
        if c == "\\" and not raw:
            if j + 1 >= n:
                raise _Stop("unterminated_string", "unterminated string literal", start)
            e = src[j + 1]
            if e in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[e])
                j += 2
                continue
            width = {"x": 2, "u": 4, "U": 8}.get(e)
            digits = src[j + 2:j + 2 + width] if width else ""
            if width and len(digits) == width and all(d in _HEX for d in digits):
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise _Stop("invalid_escape", f"invalid code point in escape \\{e}{digits}", j)
                out.append(chr(code))
                j += 2 + width
                continue
            raise _Stop("invalid_escape",
                        f"invalid escape sequence '\\{e}' (write '\\\\' for a backslash, or use r\"...\")", j)
        out.append(c)
        j += 1
    tokens.append(Token("string", src[start:j], start, "".join(out)))
    return j


# ---------------------------------------------------------------------------------------- syntax tree

@dataclass(eq=False, slots=True)
class Node:
    kind: str  # lit | list | ident | select | index | unary | binary | logical | cond | call
    pos: int  # offset of the token that defines the node (operator, field, function name, literal)
    start: int  # offset of the node's first character
    value: Any = None  # literal value, identifier / field / function name, or operator
    children: list[Node] = field(default_factory=list)
    target: Node | None = None  # receiver of a method call / operand of a selection or index
    depth: int = 1


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _lex(src)
        self.i = 0
        self.nesting = 0
        self.nodes = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _is(self, text: str) -> bool:
        t = self.tok
        return (t.kind == "op" and t.text == text) or (t.kind == "ident" and t.text == text == "in")

    def _take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def _expect(self, text: str, what: str) -> Token:
        if not self._is(text):
            raise _Stop("syntax_error", f"expected '{text}' {what}, found {self._describe(self.tok)}", self.tok.pos)
        return self._take()

    @staticmethod
    def _describe(t: Token) -> str:
        return "end of expression" if t.kind == "eof" else f"'{t.text}'"

    def _node(self, kind: str, pos: int, start: int, value: Any = None, children: list[Node] | None = None,
              target: Node | None = None) -> Node:
        kids = children or []
        sub = kids + ([target] if target is not None else [])
        depth = 1 + max((k.depth for k in sub), default=0)
        if depth > MAX_DEPTH:
            raise _Stop("too_deep", f"expression nested deeper than {MAX_DEPTH} levels", pos)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Stop("too_complex", f"expression has more than {MAX_NODES} parts", pos)
        return Node(kind, pos, start, value, kids, target, depth)

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _Stop("too_deep", f"expression nested deeper than {MAX_DEPTH} levels", self.tok.pos)

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise _Stop("empty_expression", "the expression is empty", 0)
        node = self.expr()
        if self.tok.kind != "eof":
            raise _Stop("syntax_error", f"unexpected {self._describe(self.tok)} after the expression", self.tok.pos)
        return node

    def expr(self) -> Node:
        self._enter()
        try:
            cond = self.logical("||")
            if not self._is("?"):
                return cond
            q = self._take()
            then = self.logical("||")
            self._expect(":", "in a conditional 'a ? b : c'")
            other = self.expr()
            return self._node("cond", q.pos, cond.start, "?:", [cond, then, other])
        finally:
            self.nesting -= 1

    def logical(self, op: str) -> Node:
        first = self.logical("&&") if op == "||" else self.relation()
        if not self._is(op):
            return first
        items = [first]
        pos = self.tok.pos
        while self._is(op):
            self._take()
            items.append(self.logical("&&") if op == "||" else self.relation())
        return self._node("logical", pos, first.start, op, items)

    def relation(self) -> Node:
        left = self.additive()
        while self.tok.text in ("<", "<=", ">", ">=", "==", "!=", "in") and self.tok.kind in ("op", "ident"):
            op = self._take()
            right = self.additive()
            left = self._node("binary", op.pos, left.start, op.text, [left, right])
        return left

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self._take()
            right = self.multiplicative()
            left = self._node("binary", op.pos, left.start, op.text, [left, right])
        return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            op = self._take()
            right = self.unary()
            left = self._node("binary", op.pos, left.start, op.text, [left, right])
        return left

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("!", "-"):
            op = self._take()
            # CEL's grammar allows runs of the same operator only: '!!x', '--x', not '!-x'.
            if self.tok.kind == "op" and self.tok.text in ("!", "-") and self.tok.text != op.text:
                raise _Stop("syntax_error", f"'{self.tok.text}' cannot follow '{op.text}' here; add parentheses",
                            self.tok.pos)
            if op.text == "-" and self.tok.kind == "int":
                lit = self._take()
                self._check_int(lit)
                return self._node("lit", op.pos, op.pos, -lit.value)
            self._enter()
            try:
                operand = self.unary()
            finally:
                self.nesting -= 1
            return self._node("unary", op.pos, op.pos, op.text, [operand])
        return self.member()

    def _check_int(self, t: Token) -> None:
        if t.value > INT64_MAX + 1:  # pragma: no cover - the lexer already refused it
            raise _Stop("int_out_of_range", "integer literal out of the 64-bit range", t.pos)

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self._is("."):
                self._take()
                name = self.tok
                if name.kind != "ident":
                    raise _Stop("syntax_error", f"expected a field or function name after '.', found "
                                f"{self._describe(name)}", name.pos)
                self._ident_ok(name)
                self._take()
                if self._is("("):
                    args = self.arguments()
                    node = self._node("call", name.pos, node.start, name.text, args, target=node)
                else:
                    node = self._node("select", name.pos, node.start, name.text, target=node)
            elif self._is("["):
                br = self._take()
                index = self.expr()
                self._expect("]", "to close the index")
                node = self._node("index", br.pos, node.start, None, [index], target=node)
            else:
                return node

    def arguments(self) -> list[Node]:
        self._expect("(", "")
        args: list[Node] = []
        if not self._is(")"):
            args.append(self.expr())
            while self._is(","):
                self._take()
                args.append(self.expr())
        self._expect(")", "to close the argument list")
        return args

    def _ident_ok(self, t: Token) -> None:
        if t.text in RESERVED:
            raise _Stop("syntax_error", f"'{t.text}' is a reserved word", t.pos)

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "int":
            self._take()
            if t.value > INT64_MAX:
                raise _Stop("int_out_of_range", "integer literal out of the 64-bit range", t.pos)
            return self._node("lit", t.pos, t.pos, t.value)
        if t.kind == "string":
            self._take()
            return self._node("lit", t.pos, t.pos, t.value)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                self._take()
                return self._node("lit", t.pos, t.pos, t.text == "true")
            if t.text == "null":
                raise _Stop("unsupported_syntax", "null is not supported: every field has a typed default", t.pos)
            self._ident_ok(t)
            self._take()
            if self._is("("):
                args = self.arguments()
                return self._node("call", t.pos, t.pos, t.text, args)
            return self._node("ident", t.pos, t.pos, t.text)
        if self._is("("):
            self._take()
            inner = self.expr()
            self._expect(")", "to close the parenthesis")
            return inner
        if self._is("["):
            br = self._take()
            items: list[Node] = []
            while not self._is("]"):
                items.append(self.expr())
                if len(items) > MAX_LIST_LITERAL:
                    raise _Stop("too_complex", f"list literal longer than {MAX_LIST_LITERAL} items", br.pos)
                if not self._is(","):
                    break
                self._take()
            self._expect("]", "to close the list")
            return self._node("list", br.pos, br.pos, None, items)
        if self._is("."):
            raise _Stop("syntax_error", "a leading '.' is not supported", t.pos)
        raise _Stop("syntax_error", f"expected a value, found {self._describe(t)}", t.pos)


# ---------------------------------------------------------------------------------------- types

@dataclass(frozen=True, slots=True)
class Type:
    kind: str  # int | string | bool | list | map | section | error
    elem: Type | None = None
    schema: ContextSchema | None = None
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list({self.elem})"
        if self.kind == "map":
            return f"map(string, {self.elem})"
        if self.kind == "section":
            return f"section '{self.name}'"
        return self.kind


INT = Type("int")
STRING = Type("string")
BOOL = Type("bool")
ERROR = Type("error")
_FIELD_TYPES = {
    FieldType.INT: INT,
    FieldType.STRING: STRING,
    FieldType.BOOL: BOOL,
    FieldType.LIST_STRING: Type("list", STRING),
    FieldType.MAP_INT: Type("map", INT),
    FieldType.MAP_BOOL: Type("map", BOOL),
}
_SCALARS = (INT, STRING, BOOL)


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Checker:
    def __init__(self, src: str, schema: ContextSchema) -> None:
        self.src = src
        self.schema = schema
        self.issues: list[tuple[str, str, int]] = []
        self.scope: dict[str, Type] = {}
        self.macros = 0

    def issue(self, code: str, message: str, pos: int) -> Type:
        self.issues.append((code, message, pos))
        return ERROR

    def field_type(self, name: str, kind: FieldType | ContextSchema) -> Type:
        if isinstance(kind, ContextSchema):
            return Type("section", schema=kind, name=name)
        return _FIELD_TYPES[kind]

    def check(self, node: Node) -> Type:
        kind = node.kind
        if kind == "lit":
            v = node.value
            return BOOL if isinstance(v, bool) else INT if isinstance(v, int) else STRING
        if kind == "list":
            return self.list_literal(node)
        if kind == "ident":
            return self.ident(node)
        if kind == "select":
            return self.select(node)
        if kind == "index":
            return self.index(node)
        if kind == "unary":
            want = BOOL if node.value == "!" else INT
            got = self.check(node.children[0])
            if got not in (want, ERROR):
                return self.issue("type_mismatch", f"'{node.value}' needs {want}, got {got}", node.children[0].start)
            return want
        if kind == "binary":
            return self.binary(node)
        if kind == "logical":
            for child in node.children:
                got = self.check(child)
                if got not in (BOOL, ERROR):
                    self.issue("type_mismatch", f"'{node.value}' needs bool operands, got {got}", child.start)
            return BOOL
        if kind == "cond":
            cond, then, other = node.children
            got = self.check(cond)
            if got not in (BOOL, ERROR):
                self.issue("type_mismatch", f"the condition of '? :' must be bool, got {got}", cond.start)
            a, b = self.check(then), self.check(other)
            if ERROR in (a, b):
                return ERROR
            if a != b:
                return self.issue("type_mismatch", f"both branches of '? :' must have the same type, got {a} and {b}",
                                  other.start)
            if a.kind == "section":
                return self.issue("type_mismatch", f"{a} is not a value", then.start)
            return a
        return self.call(node)

    def list_literal(self, node: Node) -> Type:
        if not node.children:
            return self.issue("unsupported_syntax", "empty list literal: its element type is unknown", node.pos)
        types = [self.check(c) for c in node.children]
        first = next((t for t in types if t is not ERROR), None)
        if first is None:
            return ERROR
        if first not in _SCALARS:
            return self.issue("type_mismatch", f"list items must be int, string or bool, got {first}",
                              node.children[types.index(first)].start)
        for child, t in zip(node.children, types, strict=True):
            if t not in (first, ERROR):
                return self.issue("type_mismatch", f"all list items must have the same type: {first} and {t}",
                                  child.start)
        return Type("list", first)

    def ident(self, node: Node) -> Type:
        name = node.value
        if name in self.scope:
            return self.scope[name]
        if name.startswith("_"):
            return self.issue("forbidden_name", f"names starting with '_' are not accessible: '{name}'", node.pos)
        kind = self.schema.get(name)
        if kind is None:
            return self.issue("unknown_name", f"unknown name '{name}'{_suggest(name, [*self.schema, *self.scope])}",
                              node.pos)
        return self.field_type(name, kind)

    def select(self, node: Node) -> Type:
        assert node.target is not None
        name = node.value
        if name.startswith("_"):
            return self.issue("forbidden_name", f"access to '{name}' is refused: internal attributes are not "
                              "accessible", node.pos)
        base = self.check(node.target)
        if base is ERROR:
            return ERROR
        if base.kind == "section":
            assert base.schema is not None
            kind = base.schema.get(name)
            if kind is None:
                return self.issue("unknown_field", f"{base} has no field '{name}'{_suggest(name, base.schema)}",
                                  node.pos)
            return self.field_type(f"{base.name}.{name}", kind)
        if base.kind == "map":
            return self.issue("unsupported_syntax", f"read a map with an index, e.g. [\"{name}\"], not '.{name}'",
                              node.pos)
        return self.issue("type_mismatch", f"{base} has no fields ('.{name}')", node.pos)

    def index(self, node: Node) -> Type:
        assert node.target is not None
        base = self.check(node.target)
        key = self.check(node.children[0])
        if base is ERROR:
            return ERROR
        if base.kind == "map":
            if key not in (STRING, ERROR):
                return self.issue("type_mismatch", f"map keys are strings, got {key}", node.children[0].start)
            assert base.elem is not None
            return base.elem
        if base.kind == "list":
            if key not in (INT, ERROR):
                return self.issue("type_mismatch", f"list indexes are ints, got {key}", node.children[0].start)
            assert base.elem is not None
            return base.elem
        if base.kind == "section":
            return self.issue("unsupported_syntax", f"{base} is read with '.field', not with an index", node.pos)
        return self.issue("type_mismatch", f"{base} cannot be indexed", node.pos)

    def binary(self, node: Node) -> Type:
        op = node.value
        left_node, right_node = node.children
        left, right = self.check(left_node), self.check(right_node)
        if ERROR in (left, right):
            return BOOL if op in ("<", "<=", ">", ">=", "==", "!=", "in") else ERROR
        if op == "in":
            if right.kind == "list":
                if left != right.elem:
                    return self.issue("type_mismatch", f"'in' looks for {left} in {right}", left_node.start)
                return BOOL
            if right.kind == "map":
                if left != STRING:
                    return self.issue("type_mismatch", f"'in' on a map needs a string key, got {left}", left_node.start)
                return BOOL
            return self.issue("type_mismatch", f"'in' needs a list or a map on its right, got {right}",
                              right_node.start)
        if op in ("==", "!="):
            if left.kind == "section":
                return self.issue("type_mismatch", f"{left} is not a value", left_node.start)
            if left != right:
                return self.issue("type_mismatch", f"'{op}' compares {left} with {right}", right_node.start)
            return BOOL
        allowed = (INT, STRING) if op in ("<", "<=", ">", ">=") else (INT,)
        if op == "+":
            if left in (INT, STRING) or left.kind == "list":
                if right != left:
                    return self.issue("type_mismatch", f"'+' adds {left} and {right}", right_node.start)
                return left
            return self.issue("type_mismatch", f"'+' needs int, string or list operands, got {left}", left_node.start)
        if left not in allowed:
            names = " or ".join(str(a) for a in allowed)
            return self.issue("type_mismatch", f"'{op}' needs {names} operands, got {left}", left_node.start)
        if right != left:
            return self.issue("type_mismatch", f"'{op}' compares {left} with {right}" if op in "<=>=" else
                              f"'{op}' needs {left} operands, got {right}", right_node.start)
        return BOOL if op in ("<", "<=", ">", ">=") else INT

    def call(self, node: Node) -> Type:
        name: str = node.value
        target = node.target
        if name.startswith("_"):
            return self.issue("forbidden_name", f"access to '{name}' is refused: internal attributes are not "
                              "accessible", node.pos)
        if name not in FUNCTIONS:
            return self.issue("unknown_function", f"unknown function '{name}'{_suggest(name, FUNCTIONS)}; allowed: "
                              + ", ".join(FUNCTIONS), node.pos)
        if name in MACROS:
            return self.macro(node)
        args = node.children
        if name == "size":
            if target is None:
                if len(args) != 1:
                    return self.issue("wrong_arguments", "size() takes one argument", node.pos)
                subject = args[0]
            else:
                if args:
                    return self.issue("wrong_arguments", ".size() takes no argument", node.pos)
                subject = target
            got = self.check(subject)
            if got is ERROR:
                return INT
            if got != STRING and got.kind not in ("list", "map"):
                return self.issue("type_mismatch", f"size() needs a string, a list or a map, got {got}", subject.start)
            return INT
        if target is None:
            return self.issue("wrong_arguments", f"'{name}' is a method: write value.{name}(...)", node.pos)
        if len(args) != 1:
            return self.issue("wrong_arguments", f".{name}() takes one argument, got {len(args)}", node.pos)
        got = self.check(target)
        if got not in (STRING, ERROR):
            self.issue("type_mismatch", f".{name}() applies to strings, got {got}", target.start)
        arg = args[0]
        if name == "matches":
            if arg.kind != "lit" or not isinstance(arg.value, str):
                return self.issue("pattern_not_literal", ".matches() needs a string literal pattern", arg.start)
            self.pattern(arg)
            return BOOL
        arg_type = self.check(arg)
        if arg_type not in (STRING, ERROR):
            self.issue("type_mismatch", f".{name}() needs a string argument, got {arg_type}", arg.start)
        return BOOL

    def pattern(self, arg: Node) -> None:
        text: str = arg.value
        if len(text) > MAX_PATTERN_LENGTH:
            self.issue("invalid_pattern", f"pattern longer than {MAX_PATTERN_LENGTH} characters", arg.pos)
            return
        literal = _token_text(self.src, arg.pos)
        try:
            cel.compile(f'"".matches({literal})').execute({})
        except Exception as exc:  # noqa: BLE001 - any refusal of the regex engine is an invalid pattern
            reason = str(exc).replace("\n", " ")
            self.issue("invalid_pattern", f"invalid regular expression: {reason[:200]}", arg.pos)

    def macro(self, node: Node) -> Type:
        name = node.value
        target = node.target
        args = node.children
        if target is None:
            return self.issue("wrong_arguments", f"'{name}' is a macro: write list.{name}(x, condition)", node.pos)
        if len(args) != 2:
            return self.issue("wrong_arguments", f".{name}() takes a variable and a condition", node.pos)
        var, body = args
        self.macros += 1
        if self.macros > MAX_MACROS:
            return self.issue("too_complex", f"more than {MAX_MACROS} exists/all/exists_one in one rule", node.pos)
        if self.scope:
            return self.issue("too_complex", f"'.{name}()' cannot be nested inside another macro", node.pos)
        base = self.check(target)
        if var.kind != "ident":
            return self.issue("wrong_arguments", f"the first argument of .{name}() must be a variable name", var.start)
        if var.value.startswith("_"):
            return self.issue("forbidden_name", f"names starting with '_' are not accessible: '{var.value}'", var.pos)
        if var.value in self.schema or var.value in self.scope:
            return self.issue("shadowed_name", f"variable '{var.value}' hides a name already in scope", var.pos)
        if base is ERROR:
            elem = ERROR
        elif base.kind == "list":
            assert base.elem is not None
            elem = base.elem
        elif base.kind == "map":
            elem = STRING
        else:
            return self.issue("type_mismatch", f".{name}() applies to lists and maps, got {base}", target.start)
        self.scope[var.value] = elem
        try:
            got = self.check(body)
        finally:
            del self.scope[var.value]
        if got not in (BOOL, ERROR):
            self.issue("type_mismatch", f"the condition of .{name}() must be bool, got {got}", body.start)
        return BOOL


def _token_text(src: str, pos: int) -> str:
    tokens: list[Token] = []
    if src[pos] in "rR":
        _lex_string(src, pos + 1, tokens, raw=True, start=pos)
    else:
        _lex_string(src, pos, tokens, raw=False, start=pos)
    return tokens[0].text


# ---------------------------------------------------------------------------------------- entry points

def _make_issue(src: str, code: str, message: str, pos: int) -> RuleIssue:
    pos = max(0, min(pos, len(src) - 1))
    line = src.count("\n", 0, pos) + 1
    column = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return RuleIssue(code, message, pos, line, column)


def analyse(expression: str, schema: ContextSchema = RISK_CONTEXT) -> tuple[Node | None, list[RuleIssue]]:
    """Parse and type-check; returns the syntax tree (None on a syntax error) and the issues."""
    if not isinstance(expression, str):
        return None, [RuleIssue("syntax_error", "the expression must be a string", 0, 1, 1)]
    if len(expression) > MAX_LENGTH:
        return None, [_make_issue(expression, "too_long",
                                  f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH)]
    try:
        tree = _Parser(expression).parse()
    except _Stop as stop:
        return None, [_make_issue(expression, stop.code, stop.message, stop.position)]
    checker = _Checker(expression, schema)
    result = checker.check(tree)
    if result not in (BOOL, ERROR):
        checker.issue("not_boolean", f"a rule must be a condition (bool), this expression is {result}", tree.start)
    issues = sorted({_make_issue(expression, c, m, p) for c, m, p in checker.issues},
                    key=lambda i: (i.position, i.code))
    return tree, issues


def check(expression: str, schema: ContextSchema = RISK_CONTEXT) -> list[RuleIssue]:
    """Every issue of `expression` against `schema`, ordered by position; empty when the rule is valid."""
    return analyse(expression, schema)[1]


# Roughly one unit per ~0.05 µs measured: a plain rule costs ~10 (~0.5 µs), `matches` recompiles its
# regex on every evaluation in the `cel` package (~12 µs), hence its weight.
_COSTS = {"startsWith": 4, "endsWith": 4, "contains": 6, "matches": 200, "size": 2}


def cost(node: Node) -> int:
    """A static estimate of the evaluation cost of a tree: nodes, plus more for map lookups, regexes,
    membership in long lists and macros (whose bodies run once per element)."""
    total = 1 + sum(cost(c) for c in node.children) + (cost(node.target) if node.target is not None else 0)
    if node.kind == "index":
        total += 4
    elif node.kind == "binary" and node.value == "in":
        right = node.children[1]
        total += 3 + (len(right.children) // 4 if right.kind == "list" else 2)
    elif node.kind == "call":
        if node.value in MACROS:
            total += 10 + 4 * cost(node.children[1])
        else:
            total += _COSTS.get(node.value, 0)
    return total
