"""Under ctest the package under test is the one built against that
build's libdirstorage (DS_PYTHON_LIB first on PYTHONPATH), not the copy
installed in the virtualenv: make sure of it."""
import os

import dirstorage


def pytest_configure(config):
    lib = os.environ.get("DS_PYTHON_LIB")
    if lib:
        where = os.path.dirname(os.path.abspath(dirstorage.__file__))
        assert where.startswith(os.path.abspath(lib)), (
            "dirstorage imported from %s, not from %s" % (where, lib))
