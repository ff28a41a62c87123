"""Hatchling build hook that compiles this package's Cython extensions.

The same file sits in every package that has Cython modules. It reads its
settings from ``[tool.hatch.build.targets.wheel.hooks.custom]``:

* ``extensions``: dotted module names to compile (``pg_wire._reader``);
* ``cimports-from``: sibling distributions whose ``.pxd`` files we cimport.

How it works:

* Modules are compiled in place, next to their ``.pyx`` under ``src/``, so an
  editable install (whose ``.pth`` points at ``src/``) imports them directly.
  A regular wheel gets the compiled files added explicitly, because they are
  git-ignored and hatchling would otherwise leave them out.
* A sibling's ``.pxd`` files are found in ``../<sibling>/src`` inside the
  monorepo. Built from an sdist anywhere else, the hook asks for
  ``<sibling>==<our version>`` as a build dependency and finds the ``.pxd``
  files in the installed package.
* ``PG_CYTHON_DEBUG=1`` turns bounds checks and line tracing on;
  ``PG_CYTHON_ANNOTATE=1`` writes Cython's HTML annotation next to each module.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


class CythonBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    # -- configuration ---------------------------------------------------------
    @property
    def _extensions(self) -> list[str]:
        return list(self.config.get("extensions", []))

    @property
    def _siblings(self) -> list[str]:
        return list(self.config.get("cimports-from", []))

    def dependencies(self) -> list[str]:
        deps = ["Cython>=3.0.10", "setuptools>=68"]
        for dist in self._siblings:
            if sibling_src(Path(self.root), dist) is None:
                deps.append(f"{dist}=={self.metadata.version}")
        return deps

    # -- the build -------------------------------------------------------------
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or not self._extensions:
            return
        built = self._compile()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            src = Path(self.root) / "src"
            for path in built:
                build_data["force_include"][str(path)] = str(path.relative_to(src))

    def _compile(self) -> list[Path]:
        return compile_extensions(Path(self.root), self._extensions, self._siblings)


def sibling_src(root: Path, dist: str) -> Path | None:
    """The ``src`` folder of sibling distribution *dist* in the monorepo."""
    src = root.parent / dist / "src"
    return src if src.is_dir() else None


def include_dirs(root: Path, siblings: list[str]) -> list[str]:
    dirs = [str(root / "src")]
    for dist in siblings:
        src = sibling_src(root, dist)
        if src is None:
            spec = importlib.util.find_spec(dist.replace("-", "_"))
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError(f"cannot find the .pxd files of {dist}")
            src = Path(next(iter(spec.submodule_search_locations))).parent
        dirs.append(str(src))
    return dirs


def compile_extensions(root: Path, names: list[str], siblings: list[str]) -> list[Path]:
    """Compile the Cython modules *names* of the package at *root* in place.

    Cython skips modules whose sources (``.pyx``, ``.pxd``, ``.pxi``) did not
    change since the last build, so calling this again is cheap.
    """
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    debug = _flag("PG_CYTHON_DEBUG")
    src = root / "src"
    dirs = include_dirs(root, siblings)
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if debug else []
    extensions = [
        Extension(
            name,
            [str(src.joinpath(*name.split(".")).with_suffix(".pyx"))],
            include_dirs=dirs,
            define_macros=macros,
            extra_compile_args=["-O0", "-g"] if debug else ["-O2", "-fno-strict-aliasing"],
        )
        for name in names
    ]
    directives = {
        "language_level": 3,
        "freethreading_compatible": True,
        "boundscheck": debug,
        "wraparound": debug,
        "linetrace": debug,
        "embedsignature": True,
    }
    # Cython keeps one dependency tree per process, built with the include
    # path of the first call: a later package (tools/rebuild.py builds them
    # all in one process) would not see that a sibling's .pxd changed.
    from Cython.Build import Dependencies

    Dependencies._dep_tree = None
    modules = cythonize(
        extensions,
        include_path=dirs,
        compiler_directives=directives,
        annotate=_flag("PG_CYTHON_ANNOTATE"),
        quiet=True,
        force=_flag("PG_CYTHON_FORCE") or debug,
    )
    dist = Distribution({"name": root.name, "ext_modules": modules, "package_dir": {"": "src"}})
    cmd = build_ext(dist)
    cmd.inplace = True
    cmd.build_temp = str(root / "build" / f"temp-{sys.implementation.cache_tag}")
    cmd.parallel = os.cpu_count() or 1
    cmd.ensure_finalized()
    cwd = os.getcwd()
    os.chdir(root)  # build_ext resolves the in-place target from the cwd
    try:
        cmd.run()
    finally:
        os.chdir(cwd)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return [src.joinpath(*name.split(".")[:-1], name.split(".")[-1] + suffix) for name in names]
