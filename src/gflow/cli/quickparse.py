"""Read a command line of the common shape straight from a parser's definition.

:class:`gflow.cli.common.Parser` records its ``add_argument`` calls; :func:`parse` reads
an ``argv`` made of known options (``-n 5``, ``--limit 5``, ``--limit=5``, flags,
repeated options) followed by the positionals, and returns what argparse would. On
anything else — ``--help``, an unknown or abbreviated option, clustered short flags,
``--``, a value that starts with ``-``, a value argparse would refuse, a definition it
does not know — it returns None and argparse, built from the same definition, decides.
So there is one definition of each command line, and argparse stays the judge of
everything unusual (``tests/unit/test_quickparse.py`` checks both agree).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Definition = list[tuple[tuple[str, ...], dict[str, Any]]]

SUPPRESS = "==SUPPRESS=="
REMAINDER = "..."
# action -> (takes a value, default when none is given)
ACTIONS: dict[str, tuple[bool, Any]] = {
    "store": (True, None),
    "append": (True, None),
    "store_true": (False, False),
    "store_false": (False, True),
    "version_lazy": (False, SUPPRESS),
}
POSITIONAL_NARGS = (None, "?", "*", "+", REMAINDER)
KNOWN_KEYS = {"action", "dest", "default", "type", "choices", "help", "metavar", "nargs"}


class Namespace:
    """What argparse's ``Namespace`` is to the tools: attributes, ``vars()``, equality."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__


class _Option:
    __slots__ = ("choices", "default", "dest", "flags", "kind", "nargs", "type")

    def __init__(self, flags: tuple[str, ...], kw: dict[str, Any]) -> None:
        self.flags = flags
        self.kind = kw.get("action") or "store"
        self.nargs = kw.get("nargs")
        self.type: Callable[[str], Any] | None = kw.get("type")
        self.choices = kw.get("choices")
        if flags[0][:1] == "-":
            longs = [f for f in flags if f.startswith("--")]
            name = (longs or list(flags))[0].lstrip("-").replace("-", "_")
        else:
            name = flags[0]
        self.dest: str = SUPPRESS if self.kind == "version_lazy" else kw.get("dest") or name
        if "default" in kw:
            self.default = kw["default"]
        elif self.flags[0][:1] == "-":
            self.default = ACTIONS.get(self.kind, (False, None))[1]
        else:
            self.default = None

    def absent(self) -> Any:
        """The value argparse gives this argument when the command line has none."""
        if self.nargs == REMAINDER or (self.nargs == "*" and self.default is None):
            return []
        value = self.default
        if isinstance(value, str) and value != SUPPRESS and self.type is not None:
            value = self.type(value)
        return value

    def usable(self, kw: dict[str, Any]) -> bool:
        if set(kw) - KNOWN_KEYS:
            return False
        if self.flags[0][:1] != "-":
            return self.kind == "store" and self.nargs in POSITIONAL_NARGS
        return self.kind in ACTIONS and self.nargs is None and len(self.flags[0]) > 1

    def value(self, text: str) -> tuple[bool, Any]:
        """(True, converted) when argparse would take ``text`` as it is."""
        got: Any = text
        if self.type is not None:
            try:
                got = self.type(text)
            except Exception:
                return False, None
        if self.choices is not None and got not in self.choices:
            return False, None
        return True, got


def _compile(definition: Definition) -> tuple[dict[str, _Option], list[_Option]] | None:
    flags: dict[str, _Option] = {}
    positionals: list[_Option] = []
    for names, kw in definition:
        option = _Option(names, kw)
        if not option.usable(kw):
            return None
        if names[0][:1] == "-":
            for name in names:
                flags[name] = option
        else:
            positionals.append(option)
    if len(positionals) > 1:
        return None
    return flags, positionals


def default(definition: Definition, dest: str) -> Any:
    """``get_default(dest)`` of the parser this definition builds."""
    for names, kw in definition:
        option = _Option(names, kw)
        if option.dest == dest:
            return option.default
    return None


def parse(definition: Definition, argv: list[str]) -> Namespace | None:
    """What argparse makes of ``argv``, or None to let argparse read it."""
    compiled = _compile(definition)
    if compiled is None:
        return None
    flags, positionals = compiled
    given: dict[str, Any] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word[:1] != "-" or word == "-":
            words = argv[i:]
            break
        name, eq, attached = word.partition("=")
        option = flags.get(name if word.startswith("--") else word)
        if option is None:
            return None
        if not ACTIONS[option.kind][0]:
            if eq or option.kind == "version_lazy":
                return None
            given[option.dest] = option.kind == "store_true"
            i += 1
            continue
        if eq and word.startswith("--"):
            text = attached
            i += 1
        elif i + 1 < len(argv) and argv[i + 1][:1] != "-":
            text = argv[i + 1]
            i += 2
        else:
            return None
        ok, value = option.value(text)
        if not ok:
            return None
        if option.kind == "append":
            before = given.get(option.dest, option.default)
            given[option.dest] = [*(before or []), value]
        else:
            given[option.dest] = value
    if not _take_positionals(positionals, words, given):
        return None
    return _namespace(flags, positionals, given)


def _take_positionals(positionals: list[_Option], words: list[str], given: dict[str, Any]) -> bool:
    if not positionals:
        return not words
    option = positionals[0]
    if option.nargs == REMAINDER:
        given[option.dest] = words
        return True
    if any(w[:1] == "-" and w != "-" for w in words):
        return False  # an option after the positionals: argparse's own rules
    if option.nargs in (None, "?") and len(words) > 1:
        return False
    if option.nargs in (None, "+") and not words:
        return False
    values = []
    for word in words:
        ok, value = option.value(word)
        if not ok:
            return False
        values.append(value)
    if option.nargs in (None, "?"):
        if values:
            given[option.dest] = values[0]
    elif values:
        given[option.dest] = values
    return True


def _namespace(
    flags: dict[str, _Option], positionals: list[_Option], given: dict[str, Any]
) -> Namespace:
    out: dict[str, Any] = {}
    for option in [*dict.fromkeys(flags.values()), *positionals]:
        if option.dest == SUPPRESS:
            continue
        if option.dest in given:
            out[option.dest] = given[option.dest]
            continue
        value = option.absent()
        if value != SUPPRESS:
            out.setdefault(option.dest, value)
    return Namespace(**out)
