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


# --- arithmetic arguments (audit specs) -------------------------------------------------

_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


def arith(node: ast.expr, variables: dict[str, float], where: str) -> float:
    """The value of ``+ - * / **``, unary minus/plus, parentheses and ``sqrt`` over numbers and
    variables: a whitelist walk of the ast, never ``eval``."""
    import math

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise InputError(f"{where}: unknown var {node.id!r}"
                             + (f" (vars: {', '.join(variables)})" if variables else " (no [vars] table)"))
        return float(variables[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = arith(node.operand, variables, where)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = arith(node.left, variables, where), arith(node.right, variables, where)
        try:
            out = _BINOPS[type(node.op)](a, b)
        except (ZeroDivisionError, OverflowError) as e:
            raise InputError(f"{where}: {ast.unparse(node)!r}: {e}") from None
        if not isinstance(out, float) or not math.isfinite(out):
            raise InputError(f"{where}: {ast.unparse(node)!r} is not a finite real number")
        return out
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sqrt"
            and len(node.args) == 1 and not node.keywords):
        v = arith(node.args[0], variables, where)
        if v < 0:
            raise InputError(f"{where}: sqrt of a negative number in {ast.unparse(node)!r}")
        return math.sqrt(v)
    raise InputError(f"{where}: {ast.unparse(node)!r} is not allowed (only numbers, vars, + - * / **, "
                     "parentheses and sqrt)")


def _argument(node: ast.expr, variables: dict[str, float], where: str) -> Any:
    if isinstance(node, ast.Name) and node.id not in variables:
        return node.id  # a bare word: fan_in, truncated_normal
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_argument(e, variables, where) for e in node.elts]
    return arith(node, variables, where)


def evaluate_call(text: str, variables: dict[str, float], what: str = "scheme") -> str:
    """``name(key=arithmetic, ...)`` with every argument reduced to a literal: the scheme expression
    with numbers in place of the arithmetic (``normal(std=0.02 / sqrt(8))`` -> ``normal(std=0.00707...)``)."""
    try:
        node = ast.parse(str(text).strip(), mode="eval").body
    except SyntaxError:
        raise InputError(f"{what} {text!r}: not of the form NAME or NAME(key=value, ...)") from None
    if isinstance(node, ast.Name):
        return node.id
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise InputError(f"{what} {text!r}: not of the form NAME or NAME(key=value, ...)")
    where = f"{what} {text!r}"
    parts = [repr(_argument(a, variables, where)) for a in node.args]
    for kw in node.keywords:
        if kw.arg is None:
            raise InputError(f"{where}: **kwargs are not allowed")
        v = _argument(kw.value, variables, where)
        parts.append(f"{kw.arg}={v if isinstance(v, str) and v.isidentifier() else repr(v)}")
    return f"{node.func.id}({', '.join(parts)})"
