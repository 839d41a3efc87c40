"""The contract suite lives in contract.py (not a test_ file): rewrite its asserts too."""

import pytest

pytest.register_assert_rewrite("contract")
