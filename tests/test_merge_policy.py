"""The tiered merge policy as a pure function of segment metadata (as tantivy's
`log_merge_policy.rs` tests): synthetic segments, no index built."""

from __future__ import annotations

from collections.abc import Sequence

from qa.index.merge import MergePlan, MergePolicy, SegmentMeta, TieredMergePolicy

POLICY = TieredMergePolicy(max_segments=3, merge_factor=4, size_ratio=10,
                           max_merged_chunks=1000)


def seg(name: str, chunks: int, *, docs: int = 1, deleted: int = 0,
        words: bool = False) -> SegmentMeta:
    return SegmentMeta(name, live_docs=docs, live_chunks=chunks, deleted_docs=deleted,
                       has_words=words)


def test_few_segments_are_left_alone() -> None:
    segments = [seg("a", 500), seg("b", 1), seg("c", 1)]
    assert POLICY.plan(segments, optimize=False) == MergePlan(("a", "b", "c"))


def test_one_document_segments_merge_together_never_into_the_big_one() -> None:
    """An update at a time adds a one-document segment: the four smallest (similar sizes)
    merge; the big first segment is kept as it was written."""
    segments = [seg("big", 900), seg("u1", 2), seg("u2", 1), seg("u3", 3), seg("u4", 2)]
    plan = POLICY.plan(segments, optimize=False)
    assert plan.keep == ("big",)
    assert plan.merge == ("u2", "u1", "u4", "u3")  # smallest first, ties in segment order


def test_a_window_of_dissimilar_sizes_is_skipped() -> None:
    """[1, 30, 30, 30]: 30 > 10 x 1, so the next window [30, 30, 30, 40] merges instead."""
    segments = [seg("tiny", 1), seg("a", 30), seg("b", 30), seg("c", 30), seg("d", 40)]
    plan = POLICY.plan(segments, optimize=False)
    assert plan.merge == ("a", "b", "c", "d") and plan.keep == ("tiny",)


def test_merges_stay_under_the_size_cap() -> None:
    segments = [seg(n, 300) for n in "abcde"]  # any four: 1200 > 1000 chunks
    assert POLICY.plan(segments, optimize=False) == MergePlan(tuple("abcde"))


def test_optimize_merges_everything_once() -> None:
    segments = [seg("a", 900), seg("b", 1)]
    assert POLICY.plan(segments, optimize=True) == MergePlan((), ("a", "b"))
    # One segment: merged again only to drop its deleted documents.
    assert POLICY.plan([seg("a", 900)], optimize=True) == MergePlan(("a",))
    assert POLICY.plan([seg("a", 900, deleted=3)], optimize=True) == MergePlan((), ("a",))


def test_dead_segments_are_dropped_or_carried_for_their_words() -> None:
    """A segment whose documents are all deleted goes; if live documents elsewhere may use
    words first seen in it, it waits for the next merge and is carried into it."""
    dead = seg("dead", 0, docs=0)
    wordy = seg("wordy", 0, docs=0, words=True)
    assert POLICY.plan([seg("a", 5), dead, wordy], optimize=False) == MergePlan(("a", "wordy"))
    segments = [seg("big", 900), seg("u1", 1), seg("u2", 1), wordy, seg("u3", 1), seg("u4", 1)]
    plan = POLICY.plan(segments, optimize=False)
    assert plan.keep == ("big",) and plan.merge == ("u1", "u2", "u3", "u4", "wordy")
    # --optimize with one live segment still folds the words in.
    assert POLICY.plan([seg("a", 5), wordy], optimize=True) == MergePlan((), ("a", "wordy"))


def test_the_plan_depends_on_the_metadata_only() -> None:
    segments = [seg("big", 900)] + [seg(f"u{i}", 1 + i % 3) for i in range(9)]
    first = POLICY.plan(segments, optimize=False)
    assert POLICY.plan(list(segments), optimize=False) == first
    assert set(first.keep) | set(first.merge) == {s.name for s in segments}
    assert not set(first.keep) & set(first.merge)


def test_a_policy_is_anything_with_plan() -> None:
    class Never:
        def plan(self, segments: Sequence[SegmentMeta], *, optimize: bool) -> MergePlan:
            return MergePlan(tuple(s.name for s in segments))

    policy: MergePolicy = Never()
    assert policy.plan([seg("a", 1)] * 20, optimize=False).merge == ()
