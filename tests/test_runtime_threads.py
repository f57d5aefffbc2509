"""``threads_here``: torch's CPU threads for one thread only; the dashboard's use of it."""

import threading

import torch

from cnnviz.runtime import cpu_threads, threads_here


def test_threads_here_sets_this_thread_only_and_restores_it() -> None:
    before = torch.get_num_threads()
    inside, other = [], []
    with threads_here(1):
        inside.append(torch.get_num_threads())
        t = threading.Thread(target=lambda: other.append(torch.get_num_threads()))
        t.start()
        t.join()
        with threads_here(3):
            inside.append(torch.get_num_threads())
        inside.append(torch.get_num_threads())
    assert inside == [1, 3, 1]
    assert other == [before]  # another thread keeps the process's setting
    assert torch.get_num_threads() == before


def test_threads_here_none_changes_nothing() -> None:
    before = torch.get_num_threads()
    with threads_here(None):
        assert torch.get_num_threads() == before


def test_dashboard_batch_passes_run_on_all_cores() -> None:
    from dashboard.state import on_all_cores

    @on_all_cores
    def seen() -> int:
        return torch.get_num_threads()

    with threads_here(1):
        assert seen() == cpu_threads()
        assert torch.get_num_threads() == 1
