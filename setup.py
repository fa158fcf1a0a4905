"""Build the Cython engine; the one place that knows about the extension.

The extension is optional: if it cannot be compiled, setuptools warns and
the package installs with the pure-Python engine. FASTNET_NO_EXTENSION=1
forces that pure-Python build, so the fallback path can be tested.
FASTNET_SANITIZE=address,undefined builds it with those sanitizers (see
README's development section for running the tests under them).
"""

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class build_ext_optional(build_ext):
    """Say clearly, once, that the pure-Python engine will be used."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # compiler missing or failing
            sys.stderr.write(
                f"\nWARNING: fastnet's extension {ext.name} could not be built ({exc}).\n"
                "fastnet will install with its pure-Python engine only.\n\n"
            )
            if not ext.optional:
                raise


def extensions():
    if os.environ.get("FASTNET_NO_EXTENSION", "") not in ("", "0"):
        sys.stderr.write("FASTNET_NO_EXTENSION is set: building the pure-Python engine only.\n")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        sys.stderr.write(f"WARNING: Cython is missing ({exc}); pure-Python engine only.\n")
        return []
    try:
        import numpy  # its headers: the engine reads an array's shape in C (src/fastnet_arrays.h)
    except ImportError as exc:
        sys.stderr.write(f"WARNING: numpy is missing at build time ({exc}); pure-Python engine only.\n")
        return []
    # Only the array struct's accessors are used, none of numpy's C API
    # table, so no import_array() and no deprecated API.
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if os.environ.get("FASTNET_NO_MMSG", "") not in ("", "0"):
        macros.append(("FASTNET_NO_MMSG", "1"))  # test the per-datagram C loop
    if os.environ.get("FASTNET_GRO_COUNTERS", "") not in ("", "0"):
        macros.append(("FASTNET_GRO_COUNTERS", "1"))  # count the GRO receive paths
    compile_args, link_args = ["-O2"], []
    sanitizers = os.environ.get("FASTNET_SANITIZE", "")  # e.g. "address,undefined"
    if sanitizers:
        sys.stderr.write(f"FASTNET_SANITIZE: building with -fsanitize={sanitizers}\n")
        flags = [f"-fsanitize={sanitizers}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
        compile_args = ["-O1", "-g", *flags]
        link_args = flags
    # The included and cimported files: listed so that a change rebuilds the
    # extension and an sdist carries them (setuptools packs an Extension's depends).
    depends = sorted(
        glob.glob("src/*.pyx") + glob.glob("src/*.pxi") + glob.glob("src/*.pxd") + glob.glob("src/*.h")
    )
    ext = Extension(
        "fastnet.engines._cengine",
        ["src/_cengine.pyx"],
        include_dirs=["src", numpy.get_include()],
        depends=depends,
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    modules = cythonize([ext], include_path=["src"], compiler_directives={"language_level": 3}, quiet=True)
    for module in modules:
        module.optional = True
    return modules


setup(ext_modules=extensions(), cmdclass={"build_ext": build_ext_optional})
