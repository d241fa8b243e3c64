"""What this build of gradstep is and runs with."""

from __future__ import annotations

import os
import platform
from typing import Any

from . import _core


def build_info() -> dict[str, Any]:
    """The compiler, the SIMD levels compiled in, the level this CPU supports and the one
    in use (``GRADSTEP_SIMD=<level>`` at import forces a lower one), and the threads."""
    return {
        "version": _core.version(),
        "compiler": _core.compiler(),
        "machine": platform.machine(),
        "simd_levels_built": list(_core.simd_levels_built()),
        "simd_level_supported": _core.simd_level_supported(),
        "simd_level": _core.simd_level(),
        "num_threads": _core.get_num_threads(),
        "available_cores": _core.available_cores(),
    }


def get_include() -> str:
    """The directory holding ``gradstep/*.hpp``, the header-only C++ core, for
    building C++ code against the same kernels (``-I$(python -c 'import gradstep;
    print(gradstep.get_include())')``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "include")
    if os.path.isdir(os.path.join(installed, "gradstep")):
        return installed
    # An editable install runs from the source tree.
    source = os.path.join(here, os.pardir, os.pardir, "cpp", "include")
    return os.path.normpath(source)
