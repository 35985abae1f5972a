import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--size-log2", type=int, default=None,
                     help="elements per benchmark as a power of two (default 24; 30 with -m huge)")


@pytest.fixture(scope="session")
def threads():
    return os.cpu_count() or 1
