"""Evaluate an mmcv config file's top-level assignments without executing it.

mmcv runs a config as Python; a config is a user-given file, so running it would run whatever it holds.
The official BEVFormer and DETR3D configs are data: assignments of numbers, strings, lists, tuples and
`dict(...)` calls, arithmetic on earlier names (`_dim_ * 2`), string concatenation (`data_root + '...'`),
indexing, item assignment and `dict.update` (`model['img_neck']['num_outs'] = 4`).
This reads the file's syntax tree and evaluates exactly that; anything else (an import, a function call
other than dict/list/tuple, a comprehension, an attribute) is an error naming the line, never run.
"""

from __future__ import annotations

import ast
import operator
from pathlib import Path
from typing import Any

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_CONSTRUCTORS = {"dict": dict, "list": list, "tuple": tuple}


class UnsupportedConfigSyntax(ValueError):
    """A config construct that is not plain data; names the file, the line and the construct."""


def literal_assignments(path: Path) -> dict[str, Any]:
    """{name: value} of the file's top-level assignments, in order; later ones see earlier names."""
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    namespace: dict[str, Any] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring or a bare string
        if isinstance(statement, ast.Expr) and _is_dict_update(statement.value):
            call = statement.value
            target = _evaluate(call.func.value, namespace, path)
            if not isinstance(target, dict):
                raise _unsupported(statement, path)
            args, kwargs = _arguments(call, namespace, path)
            target.update(*args, **kwargs)
            continue
        if isinstance(statement, ast.Assign):
            value = _evaluate(statement.value, namespace, path)
            for target in statement.targets:
                _assign(target, value, namespace, path)
            continue
        if isinstance(statement, ast.AnnAssign) and statement.value is not None:
            _assign(statement.target, _evaluate(statement.value, namespace, path), namespace, path)
            continue
        raise _unsupported(statement, path)
    return namespace


def _assign(target: ast.expr, value: Any, namespace: dict, path: Path) -> None:
    if isinstance(target, ast.Name):
        namespace[target.id] = value
    elif isinstance(target, ast.Subscript):  # model['img_neck']['num_outs'] = 4
        _evaluate(target.value, namespace, path)[_evaluate(target.slice, namespace, path)] = value
    elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (tuple, list)):
        if len(target.elts) != len(value):
            raise UnsupportedConfigSyntax(f"{path}:{target.lineno}: cannot unpack {len(value)} values")
        for element, item in zip(target.elts, value, strict=True):
            _assign(element, item, namespace, path)
    else:
        raise _unsupported(target, path)


def _evaluate(node: ast.expr, namespace: dict, path: Path) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise UnsupportedConfigSyntax(f"{path}:{node.lineno}: name {node.id!r} is not defined above")
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_evaluate(element, namespace, path) for element in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _unsupported(node, path)
        return {
            _evaluate(key, namespace, path): _evaluate(value, namespace, path)
            for key, value in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, namespace, path), _evaluate(node.right, namespace, path)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, namespace, path))
    if isinstance(node, ast.Slice):
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else _evaluate(part, namespace, path) for part in parts))
    if isinstance(node, ast.Subscript):
        return _evaluate(node.value, namespace, path)[_evaluate(node.slice, namespace, path)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS:
        args, kwargs = _arguments(node, namespace, path)
        return _CONSTRUCTORS[node.func.id](*args, **kwargs)
    raise _unsupported(node, path)


def _is_dict_update(node: ast.expr) -> bool:
    """`<expression>.update(...)` as a statement: the one mutation configs use besides item assignment."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"


def _arguments(call: ast.Call, namespace: dict, path: Path) -> tuple[list, dict]:
    if any(keyword.arg is None for keyword in call.keywords) or any(
        isinstance(argument, ast.Starred) for argument in call.args
    ):
        raise _unsupported(call, path)
    args = [_evaluate(argument, namespace, path) for argument in call.args]
    return args, {keyword.arg: _evaluate(keyword.value, namespace, path) for keyword in call.keywords}


def _unsupported(node: ast.AST, path: Path) -> UnsupportedConfigSyntax:
    text = ast.unparse(node) if isinstance(node, ast.AST) else repr(node)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return UnsupportedConfigSyntax(
        f"{path}:{getattr(node, 'lineno', '?')}: {type(node).__name__} `{shown}` is not plain config data; "
        "fd3d reads official configs without executing them (numbers, strings, lists, tuples, dict(...), "
        "arithmetic on names assigned above)"
    )
