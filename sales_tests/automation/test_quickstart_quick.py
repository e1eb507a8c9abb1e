"""`scripts/quickstart.py --quick`: its settings are valid, name catalogue models, and what it says about
itself matches them (2 models, fewer folds, a few segments), so the quick look is never taken for the
full run."""

from __future__ import annotations

import importlib.util
import json

from sales_assets.ml.catalogue import MODEL_CATALOGUE
from sales_assets.settings import Settings
from sales_tests.conftest import REPO_ROOT


def quickstart_module():
    spec = importlib.util.spec_from_file_location("quickstart", REPO_ROOT / "scripts" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quick_settings_are_what_the_quick_note_says(monkeypatch):
    quickstart = quickstart_module()
    for name, value in quickstart.QUICK_SETTINGS.items():
        monkeypatch.setenv(name, value)
    quick = Settings()
    monkeypatch.undo()
    full = Settings()
    assert len(quick.ml.models) == 2 and set(quick.ml.models) <= set(MODEL_CATALOGUE)
    assert quick.ml.cv_folds * quick.ml.cv_repeats < full.ml.cv_folds * full.ml.cv_repeats
    note = quickstart.QUICK_NOTE
    assert "quick look (--quick)" in note and "run without --quick for the full run" in note
    assert f"{len(quick.ml.models)} models ({', '.join(quick.ml.models)})" in note
    assert f"{quick.ml.cv_folds}-fold CV once" in note and quick.ml.cv_repeats == 1
    assert f"{quickstart.QUICK_SEGMENTS} time-series segments" in note
    assert json.loads(quickstart.QUICK_SETTINGS["SALES_ML__MODELS"]) == quick.ml.models
