"""The safe expression parser: ``name(key=literal, ...)`` split with ``ast``, never evaluated.

Scheme expressions, ``--target`` arguments, manifest calls and audit-spec rows all go through
:func:`parse_expr`, which bounds the text before ``ast.parse`` sees it and the tree after: at most
MAX_CHARS characters, MAX_DEPTH levels of nesting (``ast`` and every walk of its tree recurse:
1,000 chained terms or 20,000 unary minus signs exhaust the interpreter's stack), integers of at
most MAX_DIGITS digits (a 400-digit integer overflows ``float``; Python refuses to convert one of
4,300).  Each refusal is one line (exit 2).
"""

from __future__ import annotations

import ast
import math
from typing import Any

from initspec.errors import InputError

#: characters of one expression (a scheme, a target, a spec row): real ones have tens
MAX_CHARS = 4096
#: levels of nesting of its syntax tree (``normal(std=0.02 / sqrt(2 * n))`` has 6)
MAX_DEPTH = 64
#: digits of an integer literal (float's range ends at 309)
MAX_DIGITS = 100


def _show(text: str, limit: int = 60) -> str:
    r = repr(text)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(text)} characters)"


def parse_expr(text: str, what: str = "scheme") -> ast.expr:
    """``ast.parse(text, mode="eval").body`` within the bounds; InputError (one line) otherwise."""
    text = str(text).strip()
    form = "not of the form NAME or NAME(key=literal, ...)"
    if len(text) > MAX_CHARS:
        raise InputError(f"{what} {_show(text)}: longer than the {MAX_CHARS} characters an expression may have")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        why = f" ({e.msg})" if "nested" in str(e.msg) else ""
        raise InputError(f"{what} {_show(text)}: {form}{why}") from None
    except (RecursionError, MemoryError, ValueError):  # the parser's own stack, Python's int limit
        raise InputError(f"{what} {_show(text)}: nested deeper than {MAX_DEPTH} levels") from None
    stack = [(node, 1)]
    while stack:  # iterative: the tree may be deeper than the interpreter's stack
        n, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{what} {_show(text)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
            if n.value.bit_length() > 3.33 * MAX_DIGITS:
                digits = len(str(abs(n.value))) if n.value.bit_length() < 14000 else int(n.value.bit_length() * 0.30103)
                raise InputError(f"{what} {_show(text)}: an integer of {digits} digits; at most {MAX_DIGITS} "
                                 "are accepted")
        stack.extend((c, depth + 1) for c in ast.iter_child_nodes(n))
    return node


def _literal(node: ast.expr, where: str) -> Any:
    if isinstance(node, ast.Name):  # a bare word: fan_in, truncated_normal, relu, FAN_IN
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InputError(f"{where}: {_show(ast.unparse(node))} is not a literal") from None


def parse_call(text: str, what: str = "scheme") -> tuple[str, list[Any], dict[str, Any]]:
    """Split ``name(args...)`` into name, positional and keyword literals (never evaluated)."""
    node = parse_expr(text, what)
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
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            value = float(node.value)
        except OverflowError:
            raise InputError(f"{where}: an integer of {len(str(abs(node.value)))} digits is beyond a float") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: {ast.unparse(node)!r} is not a finite real number")
        return value
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise InputError(f"{where}: unknown var {_show(node.id)}"
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
            raise InputError(f"{where}: {_show(ast.unparse(node))}: {e}") from None
        if not isinstance(out, float) or not math.isfinite(out):
            raise InputError(f"{where}: {_show(ast.unparse(node))} is not a finite real number")
        return out
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sqrt"
            and len(node.args) == 1 and not node.keywords):
        v = arith(node.args[0], variables, where)
        if v < 0:
            raise InputError(f"{where}: sqrt of a negative number in {_show(ast.unparse(node))}")
        return math.sqrt(v)
    raise InputError(f"{where}: {_show(ast.unparse(node))} is not allowed (only numbers, vars, + - * / **, "
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
    node = parse_expr(text, what)
    if isinstance(node, ast.Name):
        return node.id
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise InputError(f"{what} {_show(text)}: not of the form NAME or NAME(key=value, ...)")
    where = f"{what} {_show(text)}"
    parts = [repr(_argument(a, variables, where)) for a in node.args]
    for kw in node.keywords:
        if kw.arg is None:
            raise InputError(f"{where}: **kwargs are not allowed")
        v = _argument(kw.value, variables, where)
        parts.append(f"{kw.arg}={v if isinstance(v, str) and v.isidentifier() else repr(v)}")
    return f"{node.func.id}({', '.join(parts)})"
