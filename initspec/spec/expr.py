"""The safe expression parser: ``name(key=literal, ...)`` split with ``ast``, never evaluated.

Scheme expressions, ``--target`` arguments and manifest calls all go through here.
"""

from __future__ import annotations

import ast
from typing import Any

from initspec.errors import InputError


def _show(text: str, limit: int = 80) -> str:
    r = repr(text)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(text)} characters)"


def _literal(node: ast.expr, where: str) -> Any:
    if isinstance(node, ast.Name):  # a bare word: fan_in, truncated_normal, relu, FAN_IN
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InputError(f"{where}: {ast.unparse(node)!r} is not a literal") from None


def parse_call(text: str, what: str = "scheme") -> tuple[str, list[Any], dict[str, Any]]:
    """Split ``name(args...)`` into name, positional and keyword literals (never evaluated)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise InputError(f"{what} {_show(text)}: not of the form NAME or NAME(key=literal, ...)") from None
    if isinstance(node, (ast.Name, ast.Attribute)):
        return ast.unparse(node), [], {}
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise InputError(f"{what} {_show(text)}: not of the form NAME or NAME(key=literal, ...)")
    where = f"{what} {_show(text)}"
    args = [_literal(a, where) for a in node.args]
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise InputError(f"{where}: **kwargs are not allowed")
        if kw.arg in kwargs:  # ast keeps both; one would silently win
            raise InputError(f"{where}: {kw.arg} is given twice")
        kwargs[kw.arg] = _literal(kw.value, where)
    return ast.unparse(node.func), args, kwargs
