"""Run-time evidence that a part is the package's own (worker side: untrusted, so it only takes points away).

While student code runs (the cells, and every probe call), the modules that implement graded
parts and the probes that hold them are out of `sys.modules`; an import of them from student
code fails with a message and is recorded. Every other package module is a tripwire: an
attribute of it that is (or holds) one of those modules' objects, read from student code, is
recorded. Classes of those modules record being built from student code (a network holding the
package's network as a layer, directly or through a trainer; not one a probe handed to the student's
code with `probing.substituted`), and after the cells each part's
names are checked for where their code was compiled: the student's cells, not a package file and
not text given to exec/compile. Trusted code (the probes, the grading engine) keeps every
reference: its frames end the walk up the stack before a student frame is found.
The evidence goes back as lines "grade_id<TAB>route" in one uint8 array.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import types

from .probing import HANDED

CELL = re.compile(r"^<cell '([^']{1,200})'>$")
AUTOGRAPH = "__autograph_generated_file"     # TensorFlow's conversions of Python functions: the library's
MAX_LINES = 200


class Guard:
    def __init__(self, hidden, solution, trusted_dirs, package_dir, parts):
        self.hidden = {m: sys.modules[m] for m in hidden if m in sys.modules}
        self.solution = set(solution)
        self.trusted = tuple(os.path.join(os.path.realpath(d), "") for d in trusted_dirs)
        self.package = os.path.join(os.path.realpath(package_dir), "")
        self.library = tuple(os.path.join(os.path.realpath(p), "") for p in
                             {sys.prefix, sys.base_prefix, sys.exec_prefix} if p)
        self.parts = dict(parts)            # grade_id -> names it defines
        self.step = ""                      # the part of the cell or call that runs
        self.lines: list[str] = []
        self._kinds: dict[str, str] = {}

    # ------------------------------------------------------------------ frames

    def _kind(self, filename: str) -> str:
        kind = self._kinds.get(filename)
        if kind is None:
            real = os.path.realpath(filename) if filename.startswith("/") else filename
            if filename.startswith("<frozen") or real.startswith(self.library) or AUTOGRAPH in filename:
                kind = "library"
            elif real.startswith(self.trusted):
                kind = "trusted"
            elif real.startswith(self.package):
                kind = "package"
            else:
                kind = "student"
            self._kinds[filename] = kind
        return kind

    def student_part(self, frame) -> str | None:
        """The part whose code is running at `frame` (walking out of library and package code), or None
        when trusted code (a probe, the engine) is nearer."""
        found = None
        depth = 0
        while frame is not None and depth < 200:
            kind = self._kind(frame.f_code.co_filename)
            if kind == "trusted":
                return found
            if kind == "student":
                m = CELL.match(frame.f_code.co_filename)
                if m:
                    return m.group(1)
                found = found or self.step
            frame = frame.f_back
            depth += 1
        return found

    def importer(self, frame) -> bool:
        """Whether the nearest frame outside the libraries (importlib's included) is student code: a package
        module's own lazy import is served, what it then builds is watched (`_watch_init`)."""
        while frame is not None:
            kind = self._kind(frame.f_code.co_filename)
            if kind != "library":
                return kind == "student"
            frame = frame.f_back
        return False

    def record(self, part: str, route: str) -> None:
        line = f"{part}\t{route}"
        if len(self.lines) < MAX_LINES and line not in self.lines:
            self.lines.append(line)

    # ------------------------------------------------------------------ install

    def install(self) -> None:
        sys.meta_path.insert(0, _Refuser(self))
        owners = {id(m) for m in self.hidden.values()}
        for name, module in list(sys.modules.items()):
            if not name.startswith("gencourse") or name in self.hidden or not isinstance(module, types.ModuleType):
                continue
            trips = {}
            for attr, value in list(vars(module).items()):
                if id(value) in owners:
                    trips[attr] = value.__name__
                elif getattr(value, "__module__", None) in self.solution and not isinstance(value, types.ModuleType):
                    trips[attr] = f"{value.__module__}.{getattr(value, '__qualname__', attr)}"
            if trips:
                _TRIPS[name] = (self, trips)
                try:
                    module.__class__ = _Tripwired
                except TypeError:
                    pass
        for module in self.hidden.values():
            if module.__name__ in self.solution:
                for value in list(vars(module).values()):
                    if isinstance(value, type) and value.__module__ == module.__name__:
                        _watch_init(self, value)
        self.hide()

    def hide(self) -> None:
        """Out of sys.modules before each step (a trusted import may have put one back)."""
        for name in self.hidden:
            sys.modules.pop(name, None)

    # ------------------------------------------------------------------ provenance

    def check_namespace(self, namespace: dict) -> None:
        """Where each part's names were compiled: its cells, not a package file nor text run by exec."""
        for gid, names in self.parts.items():
            for name in names:
                if name in namespace:
                    try:
                        where = self._origin(namespace[name])
                    except Exception:       # a student object that raises on inspection: no evidence
                        where = None
                    if where:
                        self.record(gid, f"binds `{name}` {where}")

    def _origin(self, obj, depth=0):
        if depth > 3:
            return None
        if isinstance(obj, types.ModuleType):
            name = getattr(obj, "__name__", "")
            return f"to the module `{name}`" if name in self.hidden else None
        if isinstance(obj, type):
            for cls in obj.__mro__:
                if getattr(cls, "__module__", None) in self.solution:
                    return f"to a class built on `{cls.__module__}.{cls.__qualname__}`"
            if obj.__module__ != "__main__":        # a class of the package or a library: its bases said it
                return None
            for attr, value in list(vars(obj).items()):
                if not (attr.startswith("__") and attr.endswith("__")):    # dataclass dunders come from exec
                    where = self._code_origin(getattr(value, "__func__", value))
                    if where:
                        return where
            return None
        for inner in ("__func__", "func", "__wrapped__"):       # methods, functools.partial, decorators
            try:
                wrapped = getattr(obj, inner, None)
            except Exception:
                wrapped = None
            where = self._origin(wrapped, depth + 1) if wrapped is not None else None
            if where:
                return where
        where = self._code_origin(obj)
        if where:
            return where
        if not isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            return self._origin(type(obj), depth + 1) if type(obj).__module__ in self.solution else None
        return None

    def _code_origin(self, fn):
        code = getattr(fn, "__code__", None) if isinstance(fn, types.FunctionType) else None
        if code is None:
            return None
        filename = code.co_filename
        if CELL.match(filename):
            return None
        kind = self._kind(filename)
        module = getattr(fn, "__module__", None)
        if kind in ("package", "trusted"):
            return f"to `{module}.{fn.__qualname__}`" if module in self.solution or module in self.hidden else None
        if kind == "student":
            return f"to code compiled from text outside your cells ({filename[:80]}), by exec or compile"
        return None

    def evidence(self) -> bytes:
        return "\n".join(self.lines).encode("utf-8", "replace")


_TRIPS: dict[str, tuple] = {}


class _Tripwired(types.ModuleType):
    """A package module whose attributes that reach the package's answers record who reads them."""

    def __getattribute__(self, attr):
        entry = _TRIPS.get(types.ModuleType.__getattribute__(self, "__name__"))
        if entry is not None and (attr in entry[1] or attr == "__dict__"):
            guard = entry[0]
            part = guard.student_part(sys._getframe(1))
            if part is not None:
                target = entry[1].get(attr, "its namespace")
                name = types.ModuleType.__getattribute__(self, "__name__")
                guard.record(part, f"reaches `{target}` through `{name}`")
        return types.ModuleType.__getattribute__(self, attr)


class _Refuser(importlib.abc.MetaPathFinder):
    """Refuses the hidden modules to student code; gives trusted code the loaded module back."""

    def __init__(self, guard: Guard):
        self.guard = guard

    def find_spec(self, name, path=None, target=None):
        module = self.guard.hidden.get(name)
        if module is None:
            return None
        part = self.guard.student_part(sys._getframe(1)) if self.guard.importer(sys._getframe(1)) else None
        if part is not None:
            self.guard.record(part, f"imports `{name}`")
            raise ModuleNotFoundError(f"{name} holds the package's answers to this assignment: "
                                      "write your own (the grader gives this part 0 points)", name=name)
        return importlib.util.spec_from_loader(name, _Loaded(module))


class _Loaded(importlib.abc.Loader):
    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


def _watch_init(guard: Guard, cls: type) -> None:
    """cls(...) from student code (directly, or through a trainer it called) is recorded."""
    original = cls.__init__
    route = f"builds `{cls.__module__}.{cls.__qualname__}`"

    def __init__(self, *args, **kwargs):
        part = None if id(type(self)) in HANDED else guard.student_part(sys._getframe(1))
        if part is not None:
            guard.record(part, route)
        original(self, *args, **kwargs)

    __init__.__wrapped_by_guard__ = True
    try:
        cls.__init__ = __init__
    except (TypeError, AttributeError):
        pass
