"""dashboard/app.py loaded as a module for the tests that call its functions: its page only renders when
Streamlit runs it as __main__."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from sales_tests.ui.browser import PROJECT_ROOT

DASHBOARD_APP = PROJECT_ROOT / "dashboard" / "app.py"
# `streamlit run dashboard/app.py` puts the app's folder on sys.path (the page's modules import by name);
# the tests that load the page or run it with AppTest need the same.
if str(DASHBOARD_APP.parent) not in sys.path:
    sys.path.insert(0, str(DASHBOARD_APP.parent))


def load_dashboard(module_name: str) -> ModuleType:
    """A fresh copy of dashboard/app.py registered as `module_name` (each test module its own name, so their
    module-scoped copies do not share state)."""
    spec = importlib.util.spec_from_file_location(module_name, DASHBOARD_APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module
