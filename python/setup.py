"""Builds fccl._C against the installed torch and libfccl.

    pip install ./python                       # from a clone: builds libfccl (../build) if needed
    FCCL_HOME=/opt/fccl pip install ./python   # against an installed fccl (cmake --install)

libfccl: FCCL_HOME (an install prefix: include/fccl.h, lib/libfccl.so) if set; otherwise this
repository's headers and its build directory (FCCL_BUILD_DIR, default ../build), where the
`fccl` target is configured (if needed) and built with CMake. The shared library is copied into
the package beside _C (found through an $ORIGIN rpath), with the stock programs.

torch: the extension must be compiled against the torch it will run with, so this file imports
the installed one. Under pip's build isolation the interpreter's site-packages are hidden; they
are appended to sys.path (after the isolated environment's own packages) to find it.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

try:
    import torch  # noqa: F401
except ImportError:
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in sys.path:
            sys.path.append(path)
    import torch  # noqa: F401

from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _run(cmd):
    print("fccl setup:", " ".join(str(c) for c in cmd), flush=True)
    subprocess.check_call([str(c) for c in cmd])


def find_fccl():
    """(include dir, lib dir) of the libfccl to link."""
    home = os.environ.get("FCCL_HOME")
    if home:
        home = Path(home)
        libdirs = [d for d in (home / "lib", home / "lib64") if glob.glob(str(d / "libfccl.so*"))]
        if not (home / "include" / "fccl.h").exists() or not libdirs:
            sys.exit(f"fccl setup: FCCL_HOME={home} has no include/fccl.h and lib/libfccl.so")
        return home / "include", libdirs[0]
    if not (REPO / "include" / "fccl.h").exists():
        sys.exit("fccl setup: not inside an fccl clone; set FCCL_HOME to an installed fccl")
    build = Path(os.environ.get("FCCL_BUILD_DIR", REPO / "build"))
    if not (build / "CMakeCache.txt").exists():
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", REPO, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release"])
    jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 2))
    _run(["cmake", "--build", build, "--target", "fccl", "-j", jobs])
    return REPO / "include", build


INCLUDE, LIBDIR = find_fccl()


class Build(BuildExtension):
    """BuildExtension that also puts libfccl and the stock programs into the package."""

    def run(self):
        super().run()
        dest = Path(self.get_ext_fullpath("fccl._C")).parent
        dest.mkdir(parents=True, exist_ok=True)
        # The SONAME file (libfccl.so.MAJOR) is what _C's DT_NEEDED names; copied as a file.
        for lib in glob.glob(str(LIBDIR / "libfccl.so.[0-9]*")):
            if "." in Path(lib).name[len("libfccl.so."):]:
                continue  # libfccl.so.0.1.0: the same library under its full version
            target = dest / Path(lib).name
            if target.is_symlink() or target.exists():
                target.unlink()
            shutil.copy2(lib, target, follow_symlinks=True)
        programs = dest / "programs"
        programs.mkdir(exist_ok=True)
        stock = sorted(glob.glob(str(REPO / "fusion" / "stock" / "*.fccl")))
        if not stock and os.environ.get("FCCL_HOME"):
            stock = sorted(glob.glob(str(Path(os.environ["FCCL_HOME"]) / "share" / "fccl" / "programs" / "*.fccl")))
        for f in stock:
            shutil.copy2(f, programs / Path(f).name)


ext = CppExtension(
    name="fccl._C",
    sources=[f"csrc/{f}" for f in ("module.cc", "backend.cc", "collectives.cc", "types.cc", "work.cc",
                                    "program.cc")],
    include_dirs=[str(INCLUDE), str(HERE / "csrc")],
    library_dirs=[str(LIBDIR)],
    libraries=["fccl"],
    extra_compile_args={"cxx": ["-O2", "-Wall", "-Wno-unused-parameter"]},
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": Build},
    package_data={"fccl": ["libfccl.so.*", "programs/*.fccl"]},
)
