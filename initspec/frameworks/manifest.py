"""Framework manifests (adapters/*.toml): what a framework ships and what it claims."""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec._data import data_dir
from initspec.errors import InputError, clip, clip_path
from initspec.spec.fans import Layout, get_layout, parse_shape


@dataclass(frozen=True)
class Case:
    """One shape to test, with what a module convention needs to build it."""

    shape: tuple[int, ...]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    fan_in: int | None = None
    fan_out: int | None = None
    param: str | None = None

    def fans(self, layout: Layout) -> tuple[int, int]:
        """The case's fan overrides (one given stands for both), else the layout's fans of its shape."""
        if self.fan_in is not None or self.fan_out is not None:
            return self.fan_in or self.fan_out, self.fan_out or self.fan_in
        return layout.fans(self.shape)

    @property
    def label(self) -> str:
        return "x".join(map(str, self.shape)) or "scalar"


@dataclass
class Entry:
    """One initializer (or layer default) and the scheme it claims to implement."""

    id: str
    call: str
    convention: str
    claims: str
    layout: Layout
    cases: list[Case]
    dtypes: list[str]
    framework: str = ""
    doc: str = ""
    max_draws: int | None = None


@dataclass
class Manifest:
    framework: str
    entries: list[Entry]
    path: Path | None = None
    summary: str = ""


@functools.cache
def default_shapes(layout: str) -> list[tuple[int, ...]]:
    """The default shape set of a layout (spec/shapes.toml)."""
    with open(data_dir("spec") / "shapes.toml", "rb") as f:
        table = tomllib.load(f)["layouts"]
    return [tuple(s) for s in table["tf" if layout == "jax" else layout]["shapes"]]


def _entry_line(text: str, index: int, key: str | None) -> int:
    starts = [m.start() for m in re.finditer(r"^[ \t]*\[\[entry\]\]", text, re.M)]
    pos = starts[index] if index < len(starts) else 0
    if key:
        m = re.search(rf"^[ \t]*{re.escape(key)}\s*=", text[pos:], re.M)
        if m:
            pos += m.start()
    return text.count("\n", 0, pos) + 1


def load_manifest(path: Path) -> Manifest:
    """Parse and validate a manifest; errors name the file, line and key."""
    import jsonschema

    from initspec.spec.validate import text_file

    text = text_file(path, "--manifest")  # a regular file of bounded size: never a FIFO or /dev/zero
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{clip_path(path)}: malformed TOML: {e}") from None
    schema = json.loads((data_dir("adapters") / "schema.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        keys = list(err.path)
        where = ".".join(str(k) for k in keys) or "(top level)"
        if keys[:1] == ["entry"] and len(keys) >= 2:
            line = _entry_line(text, int(keys[1]), str(keys[2]) if len(keys) > 2 else None)
        else:
            m = re.search(rf"^[ \t]*{re.escape(str(keys[0]))}\s*=", text, re.M) if keys else None
            line = text.count("\n", 0, m.start()) + 1 if m else 1
        raise InputError(f"{clip_path(path)}:{line}: key {clip(where)}: {err.message}")
    framework = doc["framework"]
    seen: set[str] = set()
    entries = []
    for i, e in enumerate(doc["entry"]):
        if e["id"] in seen:
            raise InputError(f"{clip_path(path)}:{_entry_line(text, i, 'id')}: key entry.{i}.id: duplicate id "
                             f"{clip(e['id'])!r}")
        seen.add(e["id"])
        try:
            entries.append(_entry(e, doc, framework))
        except InputError as err:
            line = _entry_line(text, i, None)
            raise InputError(f"{clip_path(path)}:{line}: entry {clip(e['id'])!r}: {err}") from None
    return Manifest(framework=framework, entries=entries, path=path, summary=doc.get("summary", ""))


#: conventions whose draw takes no per-case arguments -> what each draw calls (a case's
#: args/kwargs would be silently dropped, so a manifest giving them is refused)
CALL_ONLY = {"numpy": "fn(rng, shape, dtype)", "jax": "fn(key, shape, dtype)",
             "keras": "Init(<call's arguments>, seed=seed)(shape, dtype)", "tf": "init(shape, dtype)"}


def _entry(e: dict[str, Any], doc: dict[str, Any], framework: str) -> Entry:
    from initspec.frameworks import CONVENTIONS
    from initspec.frameworks.target import parse_target, refuse_seed

    convention = e.get("convention", doc.get("convention", framework))
    # like a bad layout: the manifest is wrong, not the initializer (exit 2, not a failed entry)
    if ("convention" in e or "convention" in doc) and convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}: use one of {', '.join(CONVENTIONS)}")
    target = parse_target(e["call"])  # its form, and no refused module, before anything runs
    refuse_seed(target, convention, "call")
    layout_name = e.get("layout", doc.get("layout", "torch"))
    axes = e.get("axes", {})
    layout = get_layout(layout_name, axes.get("in_axis"), axes.get("out_axis"), axes.get("batch_axis"))
    if "cases" in e:
        for i, c in enumerate(e["cases"]):
            if convention in CALL_ONLY and (c.get("args") or c.get("kwargs")):
                raise InputError(f"cases[{i}] has args/kwargs, but the {convention} convention calls "
                                 f"{CALL_ONLY[convention]} and nothing else: give them in `call`")
        cases = [Case(shape=parse_shape(c["shape"]), args=tuple(c.get("args", ())), kwargs=c.get("kwargs", {}),
                      fan_in=c.get("fan_in"), fan_out=c.get("fan_out"), param=c.get("param", e.get("param")))
                 for c in e["cases"]]
    else:
        shapes = [parse_shape(s) for s in e["shapes"]] if "shapes" in e else default_shapes(layout_name)
        cases = [Case(shape=s, param=e.get("param")) for s in shapes]
    if axes:  # custom axes out of range or overlapping: bad input at load, naming file and entry
        for c in cases:
            if len(c.shape) >= 2:
                layout.fans(c.shape)
    return Entry(id=e["id"], call=e["call"], convention=convention,
                 claims=e["claims"], layout=layout, cases=cases,
                 dtypes=list(e.get("dtypes", doc.get("dtypes", ["float32"]))), framework=framework,
                 doc=e.get("doc", ""), max_draws=e.get("max_draws"))


def manifest_path(framework: str) -> Path:
    """adapters/<framework>.toml, or InputError listing the known ones."""
    folder = data_dir("adapters")
    known = sorted(p.stem for p in folder.glob("*.toml"))
    if framework not in known:  # compared by name: a path ('../x', a 100 kB name) is never looked up
        raise InputError(f"no manifest for framework {clip(framework)!r}: known are {', '.join(known)}")
    return folder / f"{framework}.toml"


def load_xfails(framework: str) -> list[tuple[str, str]]:
    """(pattern, reason) pairs of conformance/xfails/<framework>.txt ('PATTERN  # reason')."""
    path = data_dir("xfails") / f"{framework}.txt"
    if not path.is_file():
        return []
    out = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, reason = line.partition("#")
        if not sep or not reason.strip():
            raise InputError(f"{path}:{n}: an xfail line needs a reason: 'PATTERN  # reason'")
        out.append((pattern.strip(), reason.strip()))
    return out
