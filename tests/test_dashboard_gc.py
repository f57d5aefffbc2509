"""``freeze_imports``: the server's long-lived objects leave the collection Streamlit runs after
every rerun, and what the pages make afterwards is still collected."""

import gc
import weakref

import pytest

from dashboard.state import freeze_imports
from dashboard_fixtures import dashboard_env_no_data, open_page, tiny_dashboard  # noqa: F401 (fixtures)


class Node:
    """A plain object the collector tracks (it can hold a reference cycle)."""


def tracked(obj: object) -> bool:
    """Whether a collection walks ``obj`` (the permanent generation is not in ``get_objects``)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def nothing_frozen():
    """Each test starts and ends with nothing frozen and no freeze cached."""
    gc.unfreeze()
    freeze_imports.clear()
    yield
    gc.unfreeze()
    freeze_imports.clear()


def test_freeze_imports_freezes_what_is_alive_once_per_module_count() -> None:
    before = Node()
    freeze_imports(10**6)  # a module count no real run has
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert not tracked(before)  # frozen: the collection after each rerun skips it

    after = Node()
    freeze_imports(10**6)  # the same count: cached, nothing more is frozen
    assert gc.get_freeze_count() == frozen
    assert tracked(after)

    freeze_imports(10**6 + 1)  # a page imported more: freeze again, `after` with it
    assert gc.get_freeze_count() > frozen
    assert not tracked(after)


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    freeze_imports(10**6)
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_a_dashboard_run_freezes_what_it_imported(dashboard_env_no_data) -> None:
    at = open_page("model")
    assert not at.exception
    assert gc.get_freeze_count() > 0  # app.py froze what was imported before its run
