"""The bisection's choice of commits and its answer on real git histories (no pytest runs):
linear, with a merge, with skipped commits; and the A/B failure line the steps read."""

from __future__ import annotations

import subprocess

import pytest

from perfsuite.bisect.search import Bisection
from perfsuite.bisect.step import _REGRESSED, selection
from perfsuite.measure.paired import PairedTrials, judge_pairs


def git(folder, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


def commit(folder, name):
    (folder / f"{name[0]}.txt").write_text(name)  # a file per branch: merges never conflict
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", name)
    return git(folder, "rev-parse", "HEAD")


@pytest.fixture
def linear(tmp_path):
    git(tmp_path, "init", "-q")
    return tmp_path, [commit(tmp_path, f"c{i}") for i in range(1, 17)]


def bisect(top, commits, first_slow, skip=(), first_parent=False):
    """Runs the search with an oracle: commits from `first_slow` on are slower."""
    slow = set(commits[commits.index(first_slow):])
    search = Bisection(top, commits[-1], [commits[0]], first_parent)
    measured = []
    while (chosen := search.next_commit()) is not None:
        measured.append(chosen)
        search.record(chosen, "skipped" if chosen in skip else
                      "slower" if chosen in slow else "same")
    return search.answer(), measured


@pytest.mark.parametrize("slow", range(1, 16))
def test_every_first_slower_commit_is_found_in_at_most_four_steps(linear, slow):
    top, commits = linear
    answer, measured = bisect(top, commits, commits[slow])
    assert answer == [commits[slow]]
    assert len(measured) <= 4, "15 candidates: ceil(log2 15) steps after BAD's"
    assert commits[0] not in measured and commits[-1] not in measured


def test_skipped_commits_are_passed_over_and_named_when_they_hide_the_answer(linear):
    top, commits = linear
    first = Bisection(top, commits[-1], [commits[0]]).next_commit()
    answer, measured = bisect(top, commits, commits[12], skip={first})
    assert answer == [commits[12]] and measured[0] == first
    # the slower commit itself cannot be measured: the answer is it or the next
    answer, _ = bisect(top, commits, commits[12], skip={commits[12]})
    assert answer == [commits[12], commits[13]]


def test_a_merged_branch_is_searched_unless_first_parent(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    base = commit(tmp_path, "base")
    git(tmp_path, "checkout", "-q", "-b", "topic")
    topic = [commit(tmp_path, f"t{i}") for i in range(1, 5)]
    git(tmp_path, "checkout", "-q", "main")
    main = [commit(tmp_path, f"m{i}") for i in range(1, 3)]
    git(tmp_path, "merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    merge = git(tmp_path, "rev-parse", "HEAD")
    after = commit(tmp_path, "after")
    order = [base, *topic, *main, merge, after]

    def slower_from(first):
        # a commit is slower when it contains `first`
        return {c for c in order if subprocess.run(
            ["git", "merge-base", "--is-ancestor", first, c], cwd=tmp_path).returncode == 0}

    for first, first_parent, expected in [(topic[2], False, topic[2]), (topic[2], True, merge),
                                          (main[1], False, main[1])]:
        search = Bisection(tmp_path, after, [base], first_parent)
        slow = slower_from(first)
        while (chosen := search.next_commit()) is not None:
            assert not first_parent or chosen not in topic, "first parent: not into the branch"
            search.record(chosen, "slower" if chosen in slow else "same")
        assert search.answer() == [expected]


def test_the_step_reads_the_gates_own_failure_line():
    verdict = judge_pairs("tiny-torch-fp32", "abc123", PairedTrials("e2e", (2.0,) * 20, (3.0,) * 20),
                          0.03)
    line = f"perfsuite A/B | {verdict.describe()}"
    assert _REGRESSED.search(line).group(1) == "tiny-torch-fp32"
    gpu = judge_pairs("m-torch-fp16", "main", PairedTrials("gpu", (2.0,) * 20, (3.0,) * 20), 0.01)
    assert _REGRESSED.search(f"perfsuite A/B | {gpu.describe()}").group(1) == "m-torch-fp16"
    passing = judge_pairs("m-torch-fp16", "main", PairedTrials("gpu", (2.0,) * 20, (2.0,) * 20), 0.01)
    assert _REGRESSED.search(f"perfsuite A/B | {passing.describe()}") is None
    assert selection([]) == "test_latency"
    assert selection(["a-torch-fp32", "b-onnxruntime-fp16"]) == \
        "test_latency and (a-torch-fp32 or b-onnxruntime-fp16)"
