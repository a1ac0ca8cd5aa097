"""MkDocs hook: the settings page's table is generated from `service.config.Settings`.

`docs/settings.md` holds prose and the markers below; at build time what lies between them (a
note for readers of the unbuilt page) is replaced by one table per section of `Settings` (the
`# --- Section` comments in its class body): every field with its environment variable, its
`python -m service` flag, its type and bounds, its default and its description. So the page
cannot drift from the code; `tests/unit/test_docs_settings.py` checks that every field is in the
table.

Only `service.config` is imported (pydantic-settings, no engine).
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from service.config import Settings

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.livereload import LiveReloadServer
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

MARKER = "<!-- settings-table -->"
END_MARKER = "<!-- /settings-table -->"
PAGE = "settings.md"

_SECTION = re.compile(r"^\s*# ---\s*(?P<title>.+)$")
_FIELD = re.compile(r"^    (?P<name>[A-Za-z_]\w*)\s*:")
_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def env_name(cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads for a field."""
    if isinstance(field.alias, str):
        return field.alias if cls.model_config.get("case_sensitive") else field.alias.upper()
    full = f"{cls.model_config.get('env_prefix', '')}{name}"
    return full if cls.model_config.get("case_sensitive") else full.upper()


def cli_flags(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The `python -m service` flag(s) of a field (a plain bool also has its `--no-` form)."""
    flag = name.replace("_", "-") if cls.model_config.get("cli_kebab_case") else name
    if field.annotation is bool and cls.model_config.get("cli_implicit_flags"):
        return [f"--{flag}", f"--no-{flag}"]
    return [f"--{flag}"]


def type_name(annotation: Any) -> str:
    """A short, readable type: `int`, `list[str]`, one of `a`, `b`; `None` is left out (a
    `None` default says a field is optional)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(type_name(a) for a in parts)
    if origin is not None:
        inner = ", ".join(_plain(a) for a in get_args(annotation))
        return f"`{_plain(origin)}[{inner}]`"
    return f"`{_plain(annotation)}`"


def _plain(annotation: Any) -> str:
    return str(getattr(annotation, "__name__", annotation))


def bounds(field: FieldInfo) -> list[str]:
    """Constraints from the field's metadata: `≥ 1`, `≤ 65535`, `matches ^https?://`."""
    out = []
    for item in field.metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(item, kind):
                out.append(f"{sign} {getattr(item, attribute)}")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"matches `{pattern}`")
    return out


def default_text(field: FieldInfo) -> str:
    """The default as an operator would write it; `None` (unset) is written `None`."""
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True, validated_data={})
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "`None`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path) and Path.home() != Path("/") and value.is_relative_to(Path.home()):
        value = Path("~") / value.relative_to(Path.home())
    if isinstance(value, list | tuple | dict) and not value:
        return "empty"
    return f"`{value}`"


def description(name: str, field: FieldInfo) -> str:
    """The field's own description (its `Field(description=...)` or attribute docstring)."""
    text = field.description or ""
    return " ".join(text.split()).replace("|", "\\|")


def sections(cls: type[BaseModel]) -> list[tuple[str, list[str]]]:
    """Field names grouped by the `# --- Title (...)` comments of the class body, in order."""
    fields = list(cls.model_fields)
    groups: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    title = "General"
    lines: list[str] = []
    # The fields come from the class and its bases (service/config/*.py), bases last first.
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("service.") and issubclass(klass, BaseModel):
            try:
                lines += inspect.getsource(klass).splitlines()
            except (OSError, TypeError):
                continue
    for line in lines:
        if match := _SECTION.match(line):
            title = re.split(r"\s*[(.:]", match["title"], maxsplit=1)[0].strip() or "General"
        elif (match := _FIELD.match(line)) and match["name"] in fields:
            if not groups or groups[-1][0] != title:
                groups.append((title, []))
            groups[-1][1].append(match["name"])
            seen.add(match["name"])
    rest = [name for name in fields if name not in seen]  # inherited, or no source at hand
    if rest:
        groups.append(("Other" if groups else "Settings", rest))
    return groups


def settings_table(cls: type[BaseSettings] = Settings, heading: str = "###") -> str:
    """The settings as Markdown: a heading and a table per section."""
    out: list[str] = []
    for title, names in sections(cls):
        out += [
            f"{heading} {title}",
            "",
            "| setting | environment variable | flag | type | default | description |",
            "|---|---|---|---|---|---|",
        ]
        for name in names:
            field = cls.model_fields[name]
            flags = ", ".join(f"`{flag}`" for flag in cli_flags(cls, name, field))
            kind = ", ".join([type_name(field.annotation), *bounds(field)])
            cells = [
                f"`{name}`",
                f"`{env_name(cls, name, field)}`",
                flags,
                kind,
                default_text(field),
                description(name, field),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return fill(markdown)


def fill(markdown: str) -> str:
    """The page with the tables in place of the markers and what lies between them."""
    start, end = markdown.find(MARKER), markdown.find(END_MARKER)
    if start < 0 or end < start:
        from mkdocs.exceptions import PluginError

        raise PluginError(
            f"docs/{PAGE} lost its markers {MARKER!r} ... {END_MARKER!r}: nowhere to put the table"
        )
    return markdown[:start] + settings_table() + markdown[end + len(END_MARKER) :]


def on_serve(server: LiveReloadServer, *, config: MkDocsConfig, builder: Any) -> LiveReloadServer:
    """`mkdocs serve` rebuilds when the settings change."""
    server.watch(inspect.getfile(Settings))
    return server
