"""Every key of a config dataclass with its default and its one-line comment, for a trainer's `--help`.

    print(config_help(DynamicsTrainConfig, preset_values))
    #   train.max_steps=3000 (preset: 20000)   optimizer steps
    #   train.amp=bf16 {off, bf16, fp16}       mixed precision on CUDA (CPU runs float32)

A field's comment is the trailing `# ...` on its line in the dataclass source (a field
re-declared in a subclass without one keeps its base class's), read with `tokenize`, so
the source stays the one place a key is described. `missing_comments` lists the keys
that have none (a test keeps it empty).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
import typing
from typing import Any, Literal

import yaml


def config_help(cls: type, preset: dict[str, Any] | None = None, width: int = 120) -> str:
    """One line per key of `cls`, by section: `key=default`, its choices, the preset's value where it differs, the
    comment."""
    rows = [(key, _default_text(key, default, typ, preset), comment) for key, default, typ, comment in config_keys(cls)]
    pad = min(40, max((len(left) for _, left, _ in rows), default=0))
    lines, section = [], None
    for key, left, comment in rows:
        head = key.split(".")[0] if "." in key else ""
        if head != section:
            section = head
            lines.append(f"{head}:" if head else "")
        wrapped = textwrap.wrap(comment, max(30, width - pad - 4)) or [""]
        first = f"  {left:<{pad}}  {wrapped[0]}" if len(left) <= pad else f"  {left}\n{' ' * (pad + 4)}{wrapped[0]}"
        lines += [first, *(f"{' ' * (pad + 4)}{more}" for more in wrapped[1:])]
    return "\n".join(lines)


def config_keys(cls: type, prefix: str = "") -> list[tuple[str, Any, Any, str]]:
    """[(dotted key, default, type, comment)] of every leaf field of dataclass `cls`, nested sections flattened."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = _default(f)
        if dataclasses.is_dataclass(hints[f.name]):
            out += config_keys(hints[f.name], f"{prefix}{f.name}.") if default is None else _section(default, prefix + f.name)
        else:
            out.append((f"{prefix}{f.name}", default, hints[f.name], comments.get(f.name, "")))
    return out


def missing_comments(cls: type) -> list[str]:
    """The dotted keys of `cls` whose field has no comment."""
    return [key for key, _, _, comment in config_keys(cls) if not comment]


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment on its declaration, the most derived class's first (base classes fill the gaps)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            out |= {k: v for k, v in _own_comments(klass).items() if v}
    return out


def _section(value: Any, prefix: str) -> list[tuple[str, Any, Any, str]]:
    """The keys of a nested section whose default is an instance (`field(default_factory=...)`): its own defaults."""
    rows = config_keys(type(value), prefix + ".")
    values = {f"{prefix}.{k}": v for k, v in _flat(dataclasses.asdict(value)).items()}
    return [(key, values.get(key, default), typ, comment) for key, default, typ, comment in rows]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


@functools.cache
def _own_comments(cls: type) -> dict[str, str]:
    """The comments on the field declarations written in `cls`'s own body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    body = ast.parse(source).body[0]
    out = {}
    for node in getattr(body, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            out[node.target.id] = " ".join(comments[n] for n in lines if n in comments)
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _default_text(key: str, default: Any, typ: Any, preset: dict[str, Any] | None) -> str:
    text = f"{key}={_scalar(default)}"
    if typing.get_origin(typ) is Literal:
        text += " {" + ", ".join(_scalar(v) for v in typing.get_args(typ)) + "}"
    node: Any = preset or {}
    for part in key.split("."):
        node = node.get(part, dataclasses.MISSING) if isinstance(node, dict) else dataclasses.MISSING
    if node is not dataclasses.MISSING and node != default and not (isinstance(default, tuple) and list(default) == node):
        text += f" (preset: {_scalar(node)})"
    return text


def _scalar(value: Any) -> str:
    if value == "":
        return "''"
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
