"""The declared, typed context rules are checked and evaluated against.

A `ContextSchema` maps names to a `FieldType` or to a nested `ContextSchema` (a *section* such as
`event`). `RISK_CONTEXT` is the context of every risk rule. `make_context` turns a plain mapping into an
`EvaluationContext` once per decision: it validates every value against the schema (amounts are
integers of minor units: floats are refused, and so are bools where ints are declared), fills absent
fields with typed defaults, and builds the single `cel.Context` every rule of the decision shares.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import cel

from finloop.core.errors import InvalidRequest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_STRING_LENGTH = 4096
MAX_COLLECTION_SIZE = 1_000


class FieldType(StrEnum):
    INT = "int"
    STRING = "string"
    BOOL = "bool"
    LIST_STRING = "list_string"
    MAP_INT = "map_int"
    MAP_BOOL = "map_bool"


class ContextSchema(Mapping[str, "FieldType | ContextSchema"]):
    """A frozen mapping of names to field types or nested schemas.

    Keys may be dotted (`{"event.amount": FieldType.INT}`): they are nested into sections, so
    `ContextSchema({"event.amount": FieldType.INT})["event"]["amount"] is FieldType.INT`.
    """

    __slots__ = ("_fields", "_hash")

    def __init__(self, fields: Mapping[str, FieldType | ContextSchema | Mapping[str, Any] | str]) -> None:
        nested: dict[str, Any] = {}
        for raw_name, kind in fields.items():
            parts = raw_name.split(".")
            for part in parts:
                if not part.isidentifier() or part.startswith("_"):
                    raise ValueError(f"invalid field name {raw_name!r}")
            target = nested
            for part in parts[:-1]:
                existing = target.setdefault(part, {})
                if not isinstance(existing, dict):
                    raise ValueError(f"{raw_name!r} nests under a non-section field")
                target = existing
            if parts[-1] in target:
                raise ValueError(f"duplicate field {raw_name!r}")
            target[parts[-1]] = kind
        built: dict[str, FieldType | ContextSchema] = {}
        for name, kind in nested.items():
            if isinstance(kind, (ContextSchema, FieldType)):
                built[name] = kind
            elif isinstance(kind, Mapping):
                built[name] = ContextSchema(kind)
            else:
                built[name] = FieldType(kind)
        self._fields: Mapping[str, FieldType | ContextSchema] = MappingProxyType(dict(sorted(built.items())))
        self._hash = hash(tuple(self._fields.items()))

    def __getitem__(self, key: str) -> FieldType | ContextSchema:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContextSchema) and dict(self._fields) == dict(other._fields)

    def __repr__(self) -> str:
        return f"ContextSchema({dict(self._fields)!r})"

    def paths(self, prefix: str = "") -> dict[str, FieldType]:
        """Every leaf field by its dotted path (`{"event.amount": FieldType.INT, ...}`)."""
        out: dict[str, FieldType] = {}
        for name, kind in self._fields.items():
            if isinstance(kind, ContextSchema):
                out.update(kind.paths(f"{prefix}{name}."))
            else:
                out[f"{prefix}{name}"] = kind
        return out


RISK_CONTEXT = ContextSchema({
    "event": {
        "type": FieldType.STRING,
        "amount": FieldType.INT,
        "currency": FieldType.STRING,
        "method": FieldType.STRING,
        "channel": FieldType.STRING,
        "merchant_id": FieldType.STRING,
        "customer_id": FieldType.STRING,
        "ip": FieldType.STRING,
        "ip_country": FieldType.STRING,
        "card_country": FieldType.STRING,
        "hour": FieldType.INT,
        "risk_tier": FieldType.STRING,  # the party's onboarding tier (low, medium, high) on payouts
    },
    "customer": {
        "age_days": FieldType.INT,
        "segment": FieldType.STRING,
        "country": FieldType.STRING,
        "is_new": FieldType.BOOL,
    },
    "device": {
        "id": FieldType.STRING,
        "is_new": FieldType.BOOL,
    },
    "features": FieldType.MAP_INT,
    "lists": FieldType.LIST_STRING,
    "model": FieldType.MAP_INT,
})


_DEFAULTS: dict[FieldType, Any] = {
    FieldType.INT: 0,
    FieldType.STRING: "",
    FieldType.BOOL: False,
}


class EvaluationContext:
    """The values of one decision, validated, with the shared `cel.Context` built once.

    `values` is the plain nested dict (read it, do not mutate it); `cel` is what rules execute against.
    """

    __slots__ = ("cel", "schema", "values")

    def __init__(self, values: dict[str, Any], schema: ContextSchema) -> None:
        self.values = values
        self.schema = schema
        self.cel = cel.Context(values)

    def __repr__(self) -> str:
        return f"EvaluationContext({self.values!r})"


def _bad(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", code="invalid_context", param=path)


def _int(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a float" if isinstance(value, float) else f"a {type(value).__name__}"
        raise _bad(path, f"must be an integer (amounts in minor units), got {kind}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _bad(path, "integer out of the 64-bit range")
    return int(value)


def _str(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(path, f"must be a string, got a {type(value).__name__}")
    if len(value) > MAX_STRING_LENGTH:
        raise _bad(path, f"string longer than {MAX_STRING_LENGTH} characters")
    return value


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(path, f"must be a bool, got a {type(value).__name__}")
    return value


def _value(path: str, kind: FieldType, value: Any) -> Any:
    if value is None:
        return [] if kind is FieldType.LIST_STRING else {} if kind in (FieldType.MAP_INT, FieldType.MAP_BOOL) \
            else _DEFAULTS[kind]
    if kind is FieldType.INT:
        return _int(path, value)
    if kind is FieldType.STRING:
        return _str(path, value)
    if kind is FieldType.BOOL:
        return _bool(path, value)
    if kind is FieldType.LIST_STRING:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise _bad(path, f"must be a list of strings, got a {type(value).__name__}")
        if len(value) > MAX_COLLECTION_SIZE:
            raise _bad(path, f"more than {MAX_COLLECTION_SIZE} items")
        items = [_str(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    if not isinstance(value, Mapping):
        raise _bad(path, f"must be a mapping, got a {type(value).__name__}")
    if len(value) > MAX_COLLECTION_SIZE:
        raise _bad(path, f"more than {MAX_COLLECTION_SIZE} items")
    convert = _int if kind is FieldType.MAP_INT else _bool
    out: dict[str, Any] = {}
    for key, item in value.items():
        key_path = f"{path}[{key!r}]"
        out[_str(key_path, key)] = convert(key_path, item)
    return out


def _section(path: str, schema: ContextSchema, values: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    # Dotted keys ("event.amount") are folded into their sections first.
    folded: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise _bad(path or "context", f"key {key!r} is not a string")
        head, dot, rest = key.partition(".")
        if dot and isinstance(schema.get(head), ContextSchema):
            sub = folded.setdefault(head, {})
            if not isinstance(sub, dict):
                raise _bad(f"{path}{head}", "given both as a section and as dotted keys")
            sub[rest] = value
        elif key in folded and isinstance(folded[key], dict) and isinstance(value, Mapping):
            folded[key] = {**value, **folded[key]}
        else:
            folded[key] = value
    if strict:
        unknown = sorted(set(folded) - set(schema))
        if unknown:
            raise _bad(f"{path}{unknown[0]}", "is not declared in the context schema")
    out: dict[str, Any] = {}
    for name, kind in schema.items():
        value = folded.get(name)
        field_path = f"{path}{name}"
        if isinstance(kind, ContextSchema):
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise _bad(field_path, f"must be a mapping, got a {type(value).__name__}")
            out[name] = _section(f"{field_path}.", kind, value, strict)
        else:
            out[name] = _value(field_path, kind, value)
    return out


def make_context(values: Mapping[str, Any], schema: ContextSchema = RISK_CONTEXT, *,
                 strict: bool = False) -> EvaluationContext:
    """Validate `values` against `schema` and build the context shared by every rule of a decision.

    `values` is nested (`{"event": {"amount": 1500}}`) or dotted (`{"event.amount": 1500}`). Absent
    fields and `None` take typed defaults (0, "", false, [], {}). Floats and bools where ints are
    declared, and any other type mismatch, raise `InvalidRequest(code="invalid_context", param=path)`.
    Undeclared keys are ignored unless `strict=True`, which refuses them.
    """
    if not isinstance(values, Mapping):
        raise _bad("context", "must be a mapping")
    return EvaluationContext(_section("", schema, values, strict), schema)
