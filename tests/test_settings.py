"""Settings that are checked when the app starts."""

from __future__ import annotations

import pytest

from mapsvc import create_app


@pytest.mark.parametrize("value", ["False", "no", 0, None])
def test_quick_exit_wipes_must_be_true_or_false(app_config, value):
    with pytest.raises(ValueError, match="QUICK_EXIT_WIPES"):
        create_app({**app_config, "QUICK_EXIT_WIPES": value})
