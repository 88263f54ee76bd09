"""``$(...)`` arithmetic in values, as OpenSVC evaluates it.

After references are expanded, each ``$(expression)`` of a value is replaced by
its result: ``restart = $(1+2)`` is 3, ``mnt = /srv/$(10/4)`` is ``/srv/2.5``.
A value that is one expression and nothing else keeps the result's type (an
integer keyword given ``$(10/4)`` gets 2, truncated as OpenSVC does); inside a
longer value the result is written as Python writes numbers (``2.5``, ``2.0``).

Only arithmetic is accepted: numbers, ``+ - * / // % **``, unary minus and
parentheses. The text is parsed with :mod:`ast` and the tree walked node by
node; nothing is ever handed to ``eval``. Sizes are bounded (the text, the
number of nodes, the magnitude of integers), so that a value cannot make the
agent compute for long. Anything else is an :class:`ExpressionError`.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

MAX_TEXT = 200  # characters between the parentheses
MAX_NODES = 100  # ast nodes of one expression
MAX_BITS = 1024  # magnitude of integer results
OPENING = "$("

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ALLOWED = "numbers, + - * / // % ** and parentheses"
HINT = (
    "$(...) is arithmetic, as in OpenSVC; for the shell's command substitution "
    "write `command` (backquotes) or call a script"
)


class ExpressionError(ValueError):
    """An expression that is not arithmetic, or whose result cannot be computed."""


def has_expression(text: str) -> bool:
    return OPENING in text


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression (the text between ``$(`` and ``)``)."""
    if len(expression) > MAX_TEXT:
        raise ExpressionError(f"expression longer than {MAX_TEXT} characters")
    if not expression.strip():
        raise ExpressionError("empty expression $()")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ExpressionError(f"$({expression}) is not an arithmetic expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression of more than {MAX_NODES} terms")
    return _walk(tree.body, expression)


def _walk(node: ast.expr, text: str) -> Number:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"$({text}): {value!r} is not a number (allowed: {_ALLOWED})")
        return _checked(value, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left, text), _walk(node.right, text)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right, text)
        try:
            return _checked(_BINARY[type(node.op)](left, right), text)
        except ZeroDivisionError:
            raise ExpressionError(f"$({text}): division by zero") from None
        except OverflowError:
            raise ExpressionError(f"$({text}): the result is too large") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand, text))
    raise ExpressionError(f"$({text}): {_describe(node)} is not allowed (allowed: {_ALLOWED})")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        return "a call"
    if isinstance(node, ast.BinOp | ast.UnaryOp | ast.BoolOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.Compare):
        return "a comparison"
    return f"a {type(node).__name__}"


def _check_power(base: Number, exponent: Number, text: str) -> None:
    if abs(base) <= 1:
        return
    if abs(exponent) * math.log2(abs(base)) > MAX_BITS:
        raise ExpressionError(f"$({text}): the result is too large")


def _checked(value: object, text: str) -> Number:
    if isinstance(value, complex):  # (-8) ** 0.5
        raise ExpressionError(f"$({text}): the result is not a real number")
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(f"$({text}): the result is not a finite number")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ExpressionError(f"$({text}): the result is too large")
    return value


def _closing(text: str, opening: int) -> int:
    """Index of the ')' closing the '(' at index opening (parentheses balanced), or -1."""
    depth = 0
    for index in range(opening, len(text)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def substitute(text: str) -> tuple[str, Number | None]:
    """Replace every ``$(...)`` of text by its value.

    Returns the new text and, when text is exactly one expression, its typed value.
    """
    if OPENING not in text:
        return text, None
    out: list[str] = []
    pos = 0
    whole: Number | None = None
    while True:
        start = text.find(OPENING, pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = _closing(text, start + 1)
        if end < 0:
            raise ExpressionError(f"'$(' at column {start + 1} is never closed")
        value = evaluate(text[start + 2 : end])
        if start == 0 and end == len(text) - 1:
            whole = value
        out += [text[pos:start], str(value)]
        pos = end + 1
    return "".join(out), whole
