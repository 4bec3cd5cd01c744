"""The rule language: CEL expressions checked against a declared, typed context."""
