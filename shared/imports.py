"""A library's submodule without its package's __init__, where that __init__ loads far more than we use.

TextBlob's __init__ imports NLTK (some 28 MiB resident) and SendGrid's imports cryptography for its webhook
helper (some 8 MiB), while sentiment reads only TextBlob's lexicon and dispatch builds only SendGrid's
``Mail``. Each process keeps what it imported until it exits, so this matters in long-running workers.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_INIT = threading.Lock()


def submodule_without_package_init(package: str, submodule: str) -> ModuleType:
    """``package.submodule``, without running ``package``'s __init__ when nothing has imported it yet.

    The package is registered unexecuted; the first name anything else asks of it (``from package import
    X``) runs its __init__ into that same module object, so the library works as usual from then on.
    """
    if package not in sys.modules:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named {package!r}", name=package)
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def run_init(name: str) -> Any:
            with _INIT:
                if "__getattr__" in vars(module):
                    del module.__getattr__
                    loader.exec_module(module)
            return getattr(module, name)

        module.__getattr__ = run_init  # type: ignore[method-assign]
        sys.modules[package] = module
    return importlib.import_module(f"{package}.{submodule}")
