"""The segment index under updates, merges and faults: tombstones, locks, kill -9, a full
disk, corrupt files, old formats, readers during rebuilds."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qa import index as index_mod
from qa.documents import ParseLimits
from qa.embedding import Embedder, HashEmbedder
from qa.errors import IndexBusyError, IndexMismatchError, QAError
from qa.index import CURRENT, build_index, load_index, writer_lock
from qa.index import live as live_mod
from qa.index import merge as merge_mod
from qa.index import snapshot as snapshot_mod
from qa.index import writer as writer_mod
from qa.retrieval import prepare, retrieve
from qa.store import vectors as vectors_mod
from qa.store.lexical import SegmentLexical, write_lexical

ROOT = Path(__file__).resolve().parent.parent


def _snapshot(ix: Path) -> dict[str, object]:
    return dict(json.loads((ix / (ix / CURRENT).read_text().strip()).read_text()))


def _top(index: index_mod.Index, q: str) -> list[tuple[str, int, int]]:
    return [(p.chunk.doc_id, p.chunk.start, p.chunk.end)
            for p in retrieve(index, prepare(index, q), k=5)]


def test_unchanged_files_are_not_even_read(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    import qa.documents.corpus as corpus_mod

    read: list[str] = []
    real = corpus_mod.read_file

    def counting(doc_id, path, root):  # type: ignore[no-untyped-def]
        read.append(doc_id)
        return real(doc_id, path, root)

    monkeypatch.setattr(corpus_mod, "read_file", counting)
    in_process = ParseLimits(workers=0)  # the counting patch lives in this process
    report = build_index(corpus_dir, ix, embedder=fake_embedder, parse_limits=in_process)
    assert read == [] and report.unchanged == 5
    # Touched but identical: read (its stat changed), not re-embedded, no new segment.
    target = corpus_dir / "002_fa5fa4bef9b4e309.txt"
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    report = build_index(corpus_dir, ix, embedder=fake_embedder, parse_limits=in_process)
    assert read == [target.name]
    assert (report.unchanged, report.embedded_chunks, report.segments) == (5, 0, 1)


def test_deleted_documents_leave_every_search(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    (corpus_dir / "003_c79683804ee38f58.txt").unlink()
    build_index(corpus_dir, ix, embedder=fake_embedder)
    index = load_index(ix, embedder=fake_embedder)
    assert not index.has_doc("003_c79683804ee38f58.txt")
    for q in ["Poutine Pyongyang juin 2024", "When did Putin visit Pyongyang?"]:
        assert all(d != "003_c79683804ee38f58.txt" for d, _, _ in _top(index, q))
    _sims, ids = index.dense_search(index.embedder.embed(["Poutine"], kind="query")[0], 1000)
    assert all(index.chunk(int(i)).doc_id != "003_c79683804ee38f58.txt" for i in ids)
    assert index.n_chunks == sum(1 for _ in index.live_chunk_ids())


def test_many_updates_merge_small_segments(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiered: one-document segments merge with each other (4 at a time), never into the
    big first segment, which stays as it was written."""
    monkeypatch.setattr(merge_mod, "MAX_SEGMENTS", 3)
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    first = load_index(ix, embedder=fake_embedder).segments[0].name
    merged = 0
    for i in range(9):
        (corpus_dir / f"note{i}.txt").write_text(f"Note {i} : Kim Jong-un et Poutine.",
                                                encoding="utf-8")
        report = build_index(corpus_dir, ix, embedder=fake_embedder)
        merged += report.merged
        assert report.segments <= 3 + merge_mod.MERGE_FACTOR - 1
        assert first in [s.name for s in load_index(ix, embedder=fake_embedder).segments]
    assert merged >= 2 * merge_mod.MERGE_FACTOR
    index = load_index(ix, embedder=fake_embedder)
    assert index.n_documents == 14
    assert index.doc("note8.txt").text == "Note 8 : Kim Jong-un et Poutine."
    for doc_id in index.doc_ids():
        assert index.doc(doc_id).text == (corpus_dir / doc_id).read_text(encoding="utf-8")


def test_a_second_writer_waits_or_refuses(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    with writer_lock(ix), pytest.raises(IndexBusyError, match="another qa index"):
        build_index(corpus_dir, ix, embedder=fake_embedder, wait=0.2)
    build_index(corpus_dir, ix, embedder=fake_embedder, wait=0)  # free again


_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from qa.embedding import HashEmbedder
    from qa import index as index_mod
    import qa.store.segments as seg
    mode = sys.argv[3]
    if mode.startswith("slow"):
        real = seg.write_lexical
        def slow(*a, **k):
            out = real(*a, **k)
            print("writing", flush=True)
            time.sleep(60)
            return out
        seg.write_lexical = slow
    report = index_mod.build_index(Path(sys.argv[1]), Path(sys.argv[2]),
                                   embedder=HashEmbedder(64), optimize=mode.endswith("optimize"))
    print("done", report.documents, flush=True)
""")


def _build_process(corpus: Path, ix: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _BUILD, str(corpus), str(ix), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def test_concurrent_builds_all_succeed_and_leave_a_live_index(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    for round_ in range(2):
        for i in range(3):
            (corpus_dir / f"r{round_}-{i}.txt").write_text(f"Texte {round_} {i} sur Séoul.",
                                                          encoding="utf-8")
        procs = [_build_process(corpus_dir, ix, "plain") for _ in range(4)]
        for p in procs:
            _out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        index = load_index(ix, embedder=fake_embedder)
        assert index.n_documents == 5 + 3 * (round_ + 1)
        for doc_id in index.doc_ids():
            index.doc(doc_id)  # every segment the live snapshot names is there


def test_concurrent_no_op_builds_leave_the_index_as_it_is(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    before = ((ix / CURRENT).read_text(), sorted(p.name for p in ix.iterdir()))
    procs = [_build_process(corpus_dir, ix, "plain") for _ in range(5)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert ((ix / CURRENT).read_text(), sorted(p.name for p in ix.iterdir())) == before


@pytest.mark.parametrize("mode", ["slow-segment", "slow-optimize"])
def test_kill_9_during_a_segment_write_or_merge(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, mode: str
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    (corpus_dir / "extra.txt").write_text("Un ajout sur Vladivostok.", encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder)  # two segments: something to merge
    before = (ix / CURRENT).read_text()
    answers = _top(load_index(ix, embedder=fake_embedder), "Poutine Pyongyang")
    if mode == "slow-segment":  # a new document: killed while writing its segment
        (corpus_dir / "extra2.txt").write_text("Encore un ajout.", encoding="utf-8")
    proc = _build_process(corpus_dir, ix, mode)  # else killed while writing the merge
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(p.name.startswith(".tmp-seg-") for p in ix.iterdir())
    assert (ix / CURRENT).read_text() == before
    assert _top(load_index(ix, embedder=fake_embedder), "Poutine Pyongyang") == answers
    # The next build cleans up after the dead one and succeeds.
    report = build_index(corpus_dir, ix, embedder=fake_embedder, optimize=True)
    assert report.segments == 1
    assert not any(p.name.startswith(".tmp-") for p in ix.iterdir())
    assert load_index(ix, embedder=fake_embedder).has_doc("extra.txt")


def test_full_disk_while_committing_leaves_the_index_untouched(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    before = sorted(p.name for p in ix.iterdir())
    (corpus_dir / "new.txt").write_text("Un nouveau document.", encoding="utf-8")

    def full(path: Path, data: str | bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot_mod, "write_atomic", full)
    with pytest.raises(QAError, match=r"disk is full.*unchanged"):
        build_index(corpus_dir, ix, embedder=fake_embedder)
    assert sorted(p.name for p in ix.iterdir()) == before
    assert not load_index(ix, embedder=fake_embedder).has_doc("new.txt")


@pytest.mark.parametrize("victim", ["chunks.npy", "chunks.faiss", "segment.json",
                                    "lex_indptr.npy", "sent_codes.npy"])
def test_a_corrupt_segment_file_is_named_with_the_repair(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, victim: str
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    seg = next(p for p in ix.iterdir() if p.name.startswith("seg-"))
    data = (seg / victim).read_bytes()
    (seg / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatchError) as info:
        load_index(ix, embedder=fake_embedder)
    assert victim in str(info.value) and "qa index --rebuild" in str(info.value)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build_index(corpus_dir, ix, embedder=fake_embedder)
    build_index(corpus_dir, ix, embedder=fake_embedder, rebuild=True)
    assert load_index(ix, embedder=fake_embedder).n_documents == 5


def test_check_finds_edited_texts(corpus_dir: Path, tmp_path: Path,
                                  fake_embedder: Embedder) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    assert index_mod.verify_index(ix, embedder=fake_embedder) == []
    seg = next(p for p in ix.iterdir() if p.name.startswith("seg-"))
    data = bytearray((seg / "texts.bin").read_bytes())
    data[100:101] = b"#"
    (seg / "texts.bin").write_bytes(bytes(data))
    problems = index_mod.verify_index(ix, embedder=fake_embedder)
    assert len(problems) == 1 and "sha256" in problems[0]


def test_a_format_1_index_is_refused_then_replaced(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    old = ix / "g-20240101T000000-abcdef"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text(json.dumps({"format_version": 1}))
    (ix / CURRENT).write_text(old.name + "\n")
    with pytest.raises(IndexMismatchError, match=r"format version 1.*qa index"):
        load_index(ix, embedder=fake_embedder)
    monkeypatch.setattr(snapshot_mod, "GRACE_SECONDS", 0.0)
    report = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert report.added == 5
    assert not old.exists()
    assert load_index(ix, embedder=fake_embedder).n_documents == 5


def test_an_index_written_with_another_store_is_refused_then_rebuilt(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    """The stores a snapshot records are read: vectors written by another backend are not
    opened as FAISS ones, and the next build re-embeds rather than reusing them."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    live = ix / (ix / CURRENT).read_text().strip()
    manifest = json.loads(live.read_text(encoding="utf-8"))
    manifest["store"]["vectors"] = {"id": "hnsw-pq", "version": 7}
    live.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=r"hnsw-pq.*qa index --rebuild"):
        load_index(ix, embedder=fake_embedder)
    report = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert report.embedded_chunks == report.chunks
    assert load_index(ix, embedder=fake_embedder).n_documents == 5


def test_readers_keep_their_snapshot_through_rebuilds(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    reader = load_index(ix, embedder=fake_embedder)
    first = reader.generation
    expected = {d: reader.doc(d).text for d in reader.doc_ids()}
    reader._texts.clear()  # nothing cached: the texts must come from the files
    for i in range(4):
        target = corpus_dir / "000_25f13bc6add64f1c.txt"
        target.write_text(target.read_text(encoding="utf-8") + f"\nAjout {i}.", encoding="utf-8")
        build_index(corpus_dir, ix, embedder=fake_embedder)
    # Within the grace period the first snapshot can still be opened by name...
    assert load_index(ix, embedder=fake_embedder, name=first + ".json").generation == first
    # ...and a reader that opened it earlier still reads its texts and searches.
    assert {d: reader.doc(d).text for d in reader.doc_ids()} == expected
    assert _top(reader, "Poutine Pyongyang")
    # After the grace period, old snapshots go, and their segments with them.
    monkeypatch.setattr(snapshot_mod, "GRACE_SECONDS", 0.0)
    build_index(corpus_dir, ix, embedder=fake_embedder, optimize=True)
    snapshots = [p for p in ix.iterdir() if p.name.startswith("snap-")]
    assert len(snapshots) == index_mod.KEEP_SNAPSHOTS
    assert {d: reader.doc(d).text for d in reader.doc_ids()} == expected  # still mapped


def test_bm25_matches_bm25s_on_the_same_tokens(tmp_path: Path) -> None:
    """The per-segment BM25 scores like bm25s (method 'lucene') over one segment."""
    import bm25s

    docs = [["kim", "poutin", "pyongyang"], ["kim", "kim", "seoul"], ["poutin", "moscou"],
            ["traite", "pyongyang", "moscou", "kim"]]
    write_lexical(docs, tmp_path)
    seg = SegmentLexical(tmp_path, n_units=len(docs))
    ref = bm25s.BM25()
    ref.index(docs, show_progress=False)
    from qa.store.lexical import bm25_idf, bm25_scores

    for query in (["kim"], ["poutin", "pyongyang"], ["moscou", "kim", "absent"]):
        terms = [t for t in query if seg.doc_freq(t)]
        idfs = [bm25_idf(seg.doc_freq(t), len(docs)) for t in terms]
        avg = seg.total_length / seg.n_units
        ids, scores = bm25_scores(seg, terms, idfs, avg)
        dense = np.zeros(len(docs), np.float32)
        dense[ids] = scores
        np.testing.assert_allclose(dense, ref.get_scores(query), rtol=1e-5)


def test_ivf_segments_find_what_exact_search_finds(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.store.words as words_mod

    monkeypatch.setattr(vectors_mod, "ANN_MIN", 20)
    monkeypatch.setattr(vectors_mod, "IVF_NPROBE", 24)
    monkeypatch.setattr(words_mod, "WORDS_ANN_MIN", 20)
    emb = HashEmbedder(64)
    build_index(corpus_dir, tmp_path / "ix", embedder=emb, chunk_size=200, chunk_overlap=0)
    index = load_index(tmp_path / "ix", embedder=emb)
    assert index.segments[0].meta["vectors"]["kind"] == "ivf"
    assert index.segments[0].meta["word_vectors"]["kind"] == "ivf"
    # A corpus word's own vector finds it again through the IVF vocabulary, read alone.
    assert index.translate(emb.embed(["pyongyang"]), per_word=2, min_sim=0.9) == [["pyongyang"]]
    questions = ["Poutine Pyongyang", "missiles balistiques", "Lavrov Corée", "Koursk soldats"]
    recall = index_mod.ann_recall(tmp_path / "ix", "hash-64", questions, k=10)
    assert recall >= 0.8
    # A filter narrower than the lists probed is scored exactly.
    v = emb.embed(["Poutine"], kind="query")[0]
    _sims, ids = index.dense_search(v, 5, allowed_docs={"001_113f9629b7018fa7.txt"})
    assert len(ids) == 5
    assert {index.chunk(int(i)).doc_id for i in ids} == {"001_113f9629b7018fa7.txt"}


def test_the_embedding_cache_bound_changes_nothing(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identical texts are embedded once; a cache that overflows often gives the same index."""
    emb = HashEmbedder(64)
    (corpus_dir / "copy.txt").write_text(
        (corpus_dir / "001_113f9629b7018fa7.txt").read_text(encoding="utf-8"), encoding="utf-8")
    big = build_index(corpus_dir, tmp_path / "big", embedder=emb)
    monkeypatch.setattr(index_mod.EmbedCache, "MAX", 5)
    small = build_index(corpus_dir, tmp_path / "small", embedder=emb)
    assert big.chunks == small.chunks
    a, b = (load_index(tmp_path / n, embedder=emb) for n in ("big", "small"))
    for q in ["Poutine Pyongyang", "Lavrov", "missiles"]:
        assert _top(a, q) == _top(b, q)


# Regressions found in review.


def test_words_of_a_dropped_segment_stay_translatable(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Les soldats signent un traité de paix.", encoding="utf-8")
    (corpus / "b.txt").write_text("Un rapport sur les soldats.", encoding="utf-8")
    emb = HashEmbedder(64)
    build_index(corpus, tmp_path / "ix", embedder=emb)
    for name in ("a.txt", "b.txt"):  # both rewritten: the first segment has nothing alive
        path = corpus / name
        path.write_text(path.read_text(encoding="utf-8") + " Fin.", encoding="utf-8")
    build_index(corpus, tmp_path / "ix", embedder=emb)
    index = load_index(tmp_path / "ix", embedder=emb)
    words = {w for seg in index.segments for w in seg.words}
    assert {"soldats", "traité", "paix", "rapport"} <= words
    build_index(corpus, tmp_path / "ix", embedder=emb, optimize=True)
    index = load_index(tmp_path / "ix", embedder=emb)
    assert len(index.segments) == 1 and "traité" in index.segments[0].words


def test_a_new_title_or_date_with_the_same_text_is_picked_up(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    page = ("<html><head><title>{t}</title><meta property='article:published_time' "
            "content='{d}'></head><body><article><p>La centrale a produit 1 420 mégawatts "
            "en février, un record pour la région.</p></article></body></html>")
    (corpus / "a.html").write_text(page.format(t="Ancien titre", d="2023-03-01"), "utf-8")
    emb = HashEmbedder(64)
    build_index(corpus, tmp_path / "ix", embedder=emb)
    (corpus / "a.html").write_text(page.format(t="Nouveau titre", d="2024-06-15"), "utf-8")
    build_index(corpus, tmp_path / "ix", embedder=emb)
    index = load_index(tmp_path / "ix", embedder=emb)
    meta = index.doc_meta("a.html")
    assert (meta["date"], index.doc("a.html").date) == ("2024-06-15", "2024-06-15")


def test_statistics_after_an_update_stay_sane(corpus_dir: Path, tmp_path: Path,
                                              fake_embedder: Embedder) -> None:
    from qa.answering.sentences import term_weights

    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    (corpus_dir / "spécial.txt").write_text("Les ornithorynques de Koursk.", encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder)
    from qa.text import stem

    (corpus_dir / "spécial.txt").unlink()
    for _ in range(2):  # every document rewritten twice: deleted copies outnumber live ones
        for path in corpus_dir.iterdir():
            path.write_text(path.read_text(encoding="utf-8") + " Ajout.", encoding="utf-8")
        build_index(corpus_dir, ix, embedder=fake_embedder)
    index = load_index(ix, embedder=fake_embedder)
    assert index.doc_freq(stem("ornithorynques")) == 1  # still in the statistics...
    assert not index.has_term(stem("ornithorynques"))  # ...but no live chunk holds it
    query = prepare(index, "Pyongyang Moscou Kim Corée Russie")
    assert query.groups and all(w >= 0 for w in term_weights(index, query))


def test_a_reader_that_touched_nothing_survives_the_pruning(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    reader = load_index(ix, embedder=fake_embedder)
    monkeypatch.setattr(snapshot_mod, "GRACE_SECONDS", 0.0)
    for i in range(3):
        (corpus_dir / "000_25f13bc6add64f1c.txt").write_text(f"Nouveau texte {i}.", "utf-8")
        build_index(corpus_dir, ix, embedder=fake_embedder, optimize=True)
    assert not (ix / reader.segments[0].name).exists()
    assert reader.chunk(0).text and reader.segments[0].words is not None
    assert _top(reader, "Poutine Pyongyang")


@pytest.mark.parametrize(("victim", "damage"), [
    ("docs.jsonl", "truncate"), ("segment.json", "list"), ("texts.bin", "truncate"),
    ("docs_offsets.npy", "truncate")])
def test_more_damaged_files_are_named(corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder,
                                      victim: str, damage: str) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    seg = next(p for p in ix.iterdir() if p.name.startswith("seg-"))
    data = (seg / victim).read_bytes()
    (seg / victim).write_bytes(b"[]" if damage == "list" else data[: len(data) // 2])
    with pytest.raises(IndexMismatchError, match="--rebuild") as info:
        index = load_index(ix, embedder=fake_embedder)
        for doc_id in index.doc_ids():
            index.doc(doc_id)
    assert victim in str(info.value) or "segment" in str(info.value)


def test_merges_are_capped_by_chunks_and_keep_bm25_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    emb = HashEmbedder(64)
    (corpus / "vide.txt").write_text("— … — " * 8 + "\n\nLe chat dort.", encoding="utf-8")
    build_index(corpus, tmp_path / "ix", embedder=emb, chunk_size=50, chunk_overlap=0)
    before = load_index(tmp_path / "ix", embedder=emb).lexical_search(["chat"], 5)
    (corpus / "long.txt").write_text("Un chat. " * 200, encoding="utf-8")
    (corpus / "court.txt").write_text("Un chien dort là.", encoding="utf-8")
    monkeypatch.setattr(writer_mod, "BATCH_CHARS", 10)  # one segment per document
    monkeypatch.setattr(merge_mod, "MAX_SEGMENTS", 2)
    monkeypatch.setattr(merge_mod, "MAX_MERGED_CHUNKS", 10)
    build_index(corpus, tmp_path / "ix", embedder=emb)
    index = load_index(tmp_path / "ix", embedder=emb)
    assert all(len(s.doc_ids) == 1 for s in index.segments if len(s.chunks) > 10), [
        (s.doc_ids, len(s.chunks)) for s in index.segments]
    (corpus / "long.txt").unlink()
    (corpus / "court.txt").unlink()
    build_index(corpus, tmp_path / "ix", embedder=emb, optimize=True)
    after = load_index(tmp_path / "ix", embedder=emb).lexical_search(["chat"], 5)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)


# Format 4: the document table lives in the segments; the snapshot names segments only.


def test_a_format_3_index_is_refused_then_rebuilt_counting_unchanged_documents(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    """An index of the previous format gets the usual "run `qa index`" error, never a crash;
    the next build re-embeds everything but still tells unchanged documents by their hash."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    live = ix / (ix / CURRENT).read_text().strip()
    manifest = json.loads(live.read_text(encoding="utf-8"))
    index = load_index(ix, embedder=fake_embedder)
    seg_name = manifest["segments"][0]["name"]
    old = {d: {**index.doc_meta(d), "seg": seg_name, "n": n}
           for n, d in enumerate(index.segments[0].doc_ids)}
    index.close()
    live.write_text(json.dumps(manifest | {"format_version": 3, "documents": old}), "utf-8")
    with pytest.raises(IndexMismatchError, match=r"format version 3.*run `qa index`"):
        load_index(ix, embedder=fake_embedder)
    report = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert (report.unchanged, report.added, report.embedded_chunks) == (5, 0, report.chunks)
    assert load_index(ix, embedder=fake_embedder).n_documents == 5


def test_a_touched_file_is_restated_in_the_snapshot_not_rewritten(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    """Same bytes, new mtime: the document is read once, its segment is kept, and the
    snapshot records the new stat, so that the next build does not read it again."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    touched = corpus_dir / "002_9b1c1f3e4b6e2a17.txt"
    if not touched.exists():
        touched = sorted(corpus_dir.glob("*.txt"))[1]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    report = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert report.embedded_chunks == 0 and not report.up_to_date
    (entry,) = _snapshot(ix)["segments"]  # type: ignore[misc]
    st = touched.stat()
    assert entry["restat"] and entry["restat"][0][1:] == [st.st_size, st.st_mtime_ns]
    index = load_index(ix, embedder=fake_embedder)
    assert index.doc_meta(touched.name)["stat"] == [st.st_size, st.st_mtime_ns]
    assert build_index(corpus_dir, ix, embedder=fake_embedder).up_to_date
    # A merge writes the new stat into the merged segment's table.
    (corpus_dir / "new.txt").write_text("Un nouveau document.", encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder, optimize=True)
    (entry,) = _snapshot(ix)["segments"]  # type: ignore[misc]
    assert "restat" not in entry
    index = load_index(ix, embedder=fake_embedder)
    assert index.doc_meta(touched.name)["stat"] == [st.st_size, st.st_mtime_ns]
    assert build_index(corpus_dir, ix, embedder=fake_embedder).up_to_date


def test_new_words_are_found_by_lookup_in_the_old_vocabularies(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    """An update's segment holds only the words no older segment holds."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    old = set(load_index(ix, embedder=fake_embedder).segments[0].words)
    assert "Poutine" in old or "poutine" in old
    (corpus_dir / "mots.txt").write_text("Poutine zorglubesque Pyongyang quintessencier.",
                                         encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder)
    index = load_index(ix, embedder=fake_embedder)
    (new,) = [s for s in index.segments if "mots.txt" in s.doc_ids]
    assert {"zorglubesque", "quintessencier"} <= set(new.words)
    assert not set(new.words) & old
    assert new.known_words(["zorglubesque", "Poutine", "absent"]) == {"zorglubesque"}


def test_a_build_reads_the_live_snapshot_once_and_prunes_without_reading(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    (corpus_dir / "new.txt").write_text("Un nouveau document.", encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder)
    reads: list[str] = []
    real = snapshot_mod.read_snapshot

    def counting(index_dir: Path, name: str) -> dict[str, object]:
        reads.append(name)
        return real(index_dir, name)

    monkeypatch.setattr(snapshot_mod, "read_snapshot", counting)
    monkeypatch.setattr(live_mod, "read_snapshot", counting)
    monkeypatch.setattr(snapshot_mod, "GRACE_SECONDS", 0.0)  # keep only KEEP_SNAPSHOTS
    live = (ix / CURRENT).read_text().strip()
    assert build_index(corpus_dir, ix, embedder=fake_embedder).up_to_date
    # The live snapshot once (chunking settings included); prune reads only the kept one
    # the writer does not hold (the one before: a few KB, it names segments only).
    assert reads[0] == live and live not in reads[1:] and len(reads) == 2, reads
    reads.clear()
    (corpus_dir / "new.txt").write_text("Un document changé.", encoding="utf-8")
    build_index(corpus_dir, ix, embedder=fake_embedder)
    assert reads == [live], reads  # prune knew both kept snapshots


@pytest.mark.parametrize("victim", ["segment.json", "doc_table.jsonl", "doc_lengths.npy",
                                    "texts.bin", "chunks.faiss", "lex_terms.npy"])
def test_a_fifo_in_a_segment_is_refused_without_blocking(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, victim: str
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    seg = load_index(ix, embedder=fake_embedder).segments[0].path
    (seg / victim).unlink()
    os.mkfifo(seg / victim)
    started = time.monotonic()
    with pytest.raises(IndexMismatchError, match=r"regular file|damaged|unreadable"):
        load_index(ix, embedder=fake_embedder)
    assert time.monotonic() - started < 5
