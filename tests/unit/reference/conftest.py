from __future__ import annotations

import pytest
from ref_common import make_engine

from qfix.testing import ReferenceEngine


@pytest.fixture
def eng() -> ReferenceEngine:
    return make_engine()
