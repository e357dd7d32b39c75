"""File I/O shared by every stage. Atomic writes: a temp file in the target folder, then ``os.replace``.

A killed process leaves either the old file or the new one, never half of one; two processes writing
the same path both succeed and the last rename wins.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pytest_t2ibias.errors import T2IBiasError


def _read_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back (once, at import,
    os.umask(mask)  # since the umask is process-wide and threads may write at the same time)
    return mask


_UMASK = _read_umask()


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; ``durable`` also fsyncs, surviving a power cut.

    Caches whose entries are verified on read can skip the fsync: a lost entry is regenerated.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a report or a baseline gets the usual mode (0666 & ~umask)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, durable: bool = True) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


#: The ``.gitignore`` of a cache folder the package creates (as pytest's ``.pytest_cache`` has one): the
#: quick start's ``git add bias_tests`` staged 1,020 cached images without it.
CACHE_GITIGNORE = "# Created by pytest-t2ibias: the image and label cache does not belong in git.\n*\n"


def make_cache_folder(root: Path) -> None:
    """Create the cache folder ``root`` with a ``.gitignore`` of ``*``, when it does not exist yet.

    A folder that exists is left as it is (the user's own, perhaps committed on purpose): the
    ``.gitignore`` goes only into a folder this call created.
    """
    if root.is_dir():
        return
    try:
        root.mkdir(parents=True)
    except FileExistsError:
        return  # another process created it, and writes the .gitignore
    write_text_atomic(root / ".gitignore", CACHE_GITIGNORE, durable=False)


# ---------------------------------------------------------------------------------------------------------
# Reading: one way to read YAML (suites, policies, synthetic configs), and bounded reprs for error messages

#: The most values a YAML document's aliases may expand to (an alias bomb stops here): the values written
#: out are not counted, as the file's own size bounds them (a plain 3,000-category suite loads), only the
#: copies each ``*alias`` stands for. Schema errors on 100,000 values still report in ~0.3 s.
MAX_YAML_NODES = 100_000
#: The deepest nesting a YAML document may have, aliases expanded.
MAX_YAML_DEPTH = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlong = 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 6
_REPR.maxdict = 6


def short_repr(value: object, limit: int = 120) -> str:
    """``repr(value)`` bounded in size and cost: nesting, long strings and long lists are cut with ``...``.

    Never builds the full repr, so it is cheap on a huge or alias-expanded input.

    >>> short_repr(list(range(100)))
    '[0, 1, 2, 3, 4, 5, ...]'
    >>> len(short_repr("x" * 10_000)) <= 120
    True
    """
    try:
        shown = _REPR.repr(value)
    except Exception:  # a __repr__ that fails: show the type instead
        shown = f"<{type(value).__name__}>"
    return clip(shown, limit)


def one_line(text: str) -> str:
    """``text`` with its line breaks replaced by spaces: every error message is one line."""
    return " ".join(text.splitlines()) if any(ch in text for ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029") else text


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters with ``...``."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Rejected(Exception):
    """A document :func:`load_yaml` refuses; the message lacks the source, which load_yaml adds."""


class _CheckedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type stubs here
    """A safe loader that rejects duplicate keys, alias bombs and deep nesting while composing.

    Composing keeps, per node, its size and height with aliases expanded (memoised: an alias adds its
    target's numbers, never walks it again), and the running total of the values the aliases stand for,
    so a bomb is stopped after reading its few lines.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        self._size: dict[int, int] = {}
        self._height: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._size:
                raise _Rejected(
                    f"line {event.start_mark.line + 1}: alias *{event.anchor} refers to a node that contains it"
                )
            if target is not None:
                self._expanded += self._size[id(target)]
                if self._expanded > MAX_YAML_NODES:
                    raise _Rejected(f"the YAML expands to more than {MAX_YAML_NODES:,} values (an alias bomb?)")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _Rejected(f"line {mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels")
            node: yaml.Node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        size = 1 + sum(self._size[id(child)] for child in children)
        height = 1 + max((self._height[id(child)] for child in children), default=0)
        if height > MAX_YAML_DEPTH:
            line = node.start_mark.line + 1
            raise _Rejected(f"line {line}: nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)")
        self._size[id(node)] = size
        self._height[id(node)] = height
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class rejects it
                    continue
                if duplicate:
                    raise _Rejected(f"line {key_node.start_mark.line + 1}: duplicate key {short_repr(key)}")
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def load_yaml(text: str, source: str, error: type[T2IBiasError]) -> Any:
    """Parse one YAML document safely; every problem raises ``error`` with a one-line message.

    Besides what ``yaml.safe_load`` rejects, a duplicate mapping key (``{source}: line N: duplicate key
    'doctor'``, the line of the second one), aliases that expand to more than :data:`MAX_YAML_NODES`
    values, and nesting deeper than :data:`MAX_YAML_DEPTH` are errors. An empty document is ``None``.

    >>> load_yaml("a: 1\\nb: [x, y]\\n", "demo.yaml", T2IBiasError)
    {'a': 1, 'b': ['x', 'y']}
    >>> load_yaml("a: 1\\na: 2\\n", "demo.yaml", T2IBiasError)
    Traceback (most recent call last):
    ...
    pytest_t2ibias.errors.T2IBiasError: demo.yaml: line 2: duplicate key 'a'
    """
    loader = None
    try:
        loader = _CheckedLoader(text)  # reads the stream: a NUL or other unprintable character fails here
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except _Rejected as err:
        raise error(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        raise error(f"{source}: {_yaml_problem(err)}") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to read (more than {MAX_YAML_DEPTH} levels)") from None
    except (ValueError, OverflowError, TypeError) as err:
        # a scalar the resolver accepts but cannot build (a date like 2024-13-45, a 5,000-digit int)
        raise error(f"{source}: not valid YAML: {clip(str(err))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    text = f"not valid YAML{where}: {clip(' '.join(str(problem).split()))}"
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        text += f" ({clip(' '.join(str(context).split()), 80)} started at line {context_mark.line + 1})"
    return text
