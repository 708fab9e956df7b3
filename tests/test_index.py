from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa import chunking as chunking_mod
from qa import index as index_mod
from qa.answering import answer_question
from qa.embedding import Embedder, HashEmbedder
from qa.errors import CorpusError, IndexMismatchError, IndexNotFoundError, QAError
from qa.index import CURRENT, build_index, index_exists, load_index, read_manifest
from qa.index import embed_cache as embed_cache_mod
from qa.index import snapshot as snapshot_mod
from qa.index import writer as writer_mod
from qa.retrieval import prepare, retrieve


def _generations(index_dir: Path) -> list[str]:
    """Snapshots, segments and leftovers of the index folder."""
    return sorted(p.name for p in index_dir.iterdir()
                  if p.name.startswith(("snap-", "seg-", ".tmp-", "g-")))


def _chunks(index: index_mod.Index) -> list[object]:
    return [index.chunk(i) for i in index.live_chunk_ids()]


def test_manifest_records_what_load_checks(corpus_dir: Path, tmp_path: Path,
                                           fake_embedder: Embedder) -> None:
    report = build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder,
                         chunk_size=400, chunk_overlap=50)
    manifest = read_manifest(tmp_path / "ix")
    assert manifest["format_version"] == index_mod.FORMAT_VERSION
    assert manifest["embedder"] == {"id": "hash-64", "dim": 64}
    assert manifest["chunking"] == {"size": 400, "overlap": 50,
                                    "splitter": chunking_mod.SPLITTER_VERSION,
                                    "chunk_vectors": index_mod.CHUNK_VECTORS}
    assert manifest["counts"]["documents"] == 5 == report.documents
    index = load_index(tmp_path / "ix", embedder=fake_embedder)
    rows = [index.doc_meta(d) for d in index.doc_ids()]
    assert {d["parser"] for d in rows} == {"plain/2"}
    assert all(len(d["sha256"]) == 64 for d in rows)
    # The snapshot names segments, not documents: its size does not follow the corpus.
    assert "documents" not in manifest


def test_missing_index(tmp_path: Path, fake_embedder: Embedder) -> None:
    with pytest.raises(IndexNotFoundError, match="qa index"):
        load_index(tmp_path / "none", embedder=fake_embedder)


def test_other_embedder_is_refused(corpus_dir: Path, tmp_path: Path,
                                   fake_embedder: Embedder) -> None:
    build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder)
    with pytest.raises(IndexMismatchError, match=r"hash-64.*run `qa index`"):
        load_index(tmp_path / "ix", embedder=HashEmbedder(32))


def test_other_format_version_is_refused(corpus_dir: Path, tmp_path: Path,
                                         fake_embedder: Embedder) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    snap = ix / (ix / CURRENT).read_text().strip()
    manifest = json.loads(snap.read_text())
    manifest["format_version"] = 999
    snap.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match=r"format version 999.*qa index"):
        load_index(ix, embedder=fake_embedder)


def test_failed_build_leaves_the_old_index_untouched(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    before = (ix / CURRENT).read_text(), _generations(ix)
    (corpus_dir / "new.txt").write_text("Un nouveau document sur Pyongyang.", encoding="utf-8")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    import qa.store.segments as segments_mod

    monkeypatch.setattr(segments_mod, "write_lexical", boom)  # fails midway through writing
    with pytest.raises(QAError, match=r"could not be written \(disk full\).*unchanged"):
        build_index(corpus_dir, ix, embedder=fake_embedder)
    assert ((ix / CURRENT).read_text(), _generations(ix)) == before
    assert not load_index(ix, embedder=fake_embedder).has_doc("new.txt")


def test_interrupted_build_leaves_the_old_index_untouched(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while embedding: no new generation, CURRENT unchanged."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    before = (ix / CURRENT).read_text()
    (corpus_dir / "000_25f13bc6add64f1c.txt").write_text("Changé.", encoding="utf-8")

    def interrupt(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(corpus_dir, ix, embedder=fake_embedder, progress=interrupt)
    assert (ix / CURRENT).read_text() == before
    assert load_index(ix, embedder=fake_embedder).n_documents == 5


def test_empty_corpus_leaves_the_index_untouched(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    before = (ix / CURRENT).read_text(), _generations(ix)
    for f in corpus_dir.iterdir():
        f.write_bytes(b"")
    with pytest.raises(CorpusError):
        build_index(corpus_dir, ix, embedder=fake_embedder)
    assert ((ix / CURRENT).read_text(), _generations(ix)) == before


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.texts = 0
        self.seen: list[str] = []

    def embed(self, texts, *, kind="passage"):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        self.seen.extend(texts)
        return super().embed(texts, kind=kind)


def test_incremental_update_reembeds_only_changes(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed_cache_mod, "CHUNK_VECTORS", "embedded")  # chunk texts are embedded
    emb = CountingEmbedder()
    ix = tmp_path / "ix"
    first = build_index(corpus_dir, ix, embedder=emb)
    assert (first.added, first.unchanged) == (5, 0)

    (corpus_dir / "004_2ebee54b9c6398b9.txt").unlink()
    changed = corpus_dir / "000_25f13bc6add64f1c.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nAjout.", encoding="utf-8")
    (corpus_dir / "new.md").write_text("Kim Jong-un a reçu Lavrov.", encoding="utf-8")
    emb.texts, emb.seen = 0, []
    second = build_index(corpus_dir, ix, embedder=emb)
    assert (second.added, second.changed, second.unchanged, second.removed) == (1, 1, 3, 1)
    loaded = load_index(ix, embedder=emb)
    assert set(loaded.doc_ids()) == {
        "000_25f13bc6add64f1c.txt", "001_113f9629b7018fa7.txt", "002_fa5fa4bef9b4e309.txt",
        "003_c79683804ee38f58.txt", "new.md"}
    live_chunks = _chunks(loaded)
    new_chunks = [c for c in live_chunks if c.doc_id in ("new.md", changed.name)]
    kept_chunks = [c for c in live_chunks if c not in new_chunks]
    assert second.embedded_chunks == len(new_chunks)
    embedded = set(emb.seen)
    assert all(c.text in embedded for c in new_chunks)
    assert not any(c.text in embedded for c in kept_chunks)  # unchanged documents: none
    # Words: only those new to the corpus ('ajout', 'reçu'...), not the whole vocabulary.
    assert len(embedded) < sum(len(s.words) for s in loaded.segments) / 2
    # The old copies are tombstoned, not rewritten: the first segment is still there.
    assert loaded.manifest["counts"]["segments"] == 2
    assert sorted(len(e["deleted"]) for e in loaded.manifest["segments"]) == [0, 2]

    # Merged (which drops the tombstoned copies from the BM25 statistics, as Lucene does),
    # the updated index answers exactly as one built from scratch, with no re-embedding.
    emb.texts = 0
    optimized = build_index(corpus_dir, ix, embedder=emb, optimize=True)
    assert (optimized.segments, optimized.merged, emb.texts) == (1, 2, 0)
    loaded = load_index(ix, embedder=emb)
    fresh = build_index(corpus_dir, tmp_path / "fresh", embedder=HashEmbedder(64))
    assert fresh.chunks == second.chunks
    reloaded = load_index(tmp_path / "fresh", embedder=HashEmbedder(64))
    for q in ["Kim Jong-un a reçu Lavrov", "Pyongyang Moscou armes", "Ajout"]:
        a = [(p.chunk, round(p.score, 5)) for p in retrieve(loaded, prepare(loaded, q), k=8)]
        b = [(p.chunk, round(p.score, 5)) for p in retrieve(reloaded, prepare(reloaded, q), k=8)]
        assert a == b


def test_unchanged_corpus_embeds_nothing(corpus_dir: Path, tmp_path: Path) -> None:
    emb = CountingEmbedder()
    build_index(corpus_dir, tmp_path / "ix", embedder=emb)
    emb.texts = 0
    report = build_index(corpus_dir, tmp_path / "ix", embedder=emb)
    assert (report.unchanged, report.embedded_chunks, emb.texts) == (5, 0, 0)


def test_a_no_op_build_commits_nothing(corpus_dir: Path, tmp_path: Path,
                                       fake_embedder: Embedder) -> None:
    """Nothing changed: CURRENT and the snapshots stay as they are, so readers and replicas
    watching the index have nothing to swap; a real change commits exactly one generation."""
    ix = tmp_path / "ix"
    first = build_index(corpus_dir, ix, embedder=fake_embedder)
    before = ((ix / CURRENT).read_text(), _generations(ix))
    again = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert again.up_to_date and not first.up_to_date
    assert again.generation == first.generation == before[0].strip().removesuffix(".json")
    assert ((ix / CURRENT).read_text(), _generations(ix)) == before
    (corpus_dir / "new.txt").write_text("Un texte nouveau sur Vladivostok.", encoding="utf-8")
    changed = build_index(corpus_dir, ix, embedder=fake_embedder)
    assert not changed.up_to_date
    snaps = [g for g in _generations(ix) if g.startswith("snap-")]
    assert snaps == [f"{first.generation}.json", f"{changed.generation}.json"]
    assert (ix / CURRENT).read_text().strip() == f"{changed.generation}.json"


def test_changed_chunking_reembeds_everything(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = CountingEmbedder()
    build_index(corpus_dir, tmp_path / "ix", embedder=emb)
    (corpus_dir / "004_2ebee54b9c6398b9.txt").unlink()
    report = build_index(corpus_dir, tmp_path / "ix", embedder=emb, chunk_size=300,
                         chunk_overlap=0)
    # Same texts, so the counts say unchanged (and removed 1), but every chunk is new.
    assert (report.added, report.unchanged, report.removed) == (0, 4, 1)
    assert report.embedded_chunks == report.chunks
    # A new splitter (same settings) must not reuse units split by the old one.
    monkeypatch.setattr(writer_mod, "SPLITTER_VERSION", 99)
    report = build_index(corpus_dir, tmp_path / "ix", embedder=emb)
    assert report.embedded_chunks == report.chunks


def test_unset_chunking_keeps_the_live_index_settings(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder, chunk_size=300,
                chunk_overlap=20)
    report = build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder)
    assert report.embedded_chunks == 0
    assert read_manifest(tmp_path / "ix")["chunking"]["size"] == 300
    build_index(corpus_dir, tmp_path / "fresh", embedder=fake_embedder)
    assert read_manifest(tmp_path / "fresh")["chunking"]["size"] == index_mod.DEFAULT_CHUNK_SIZE


def test_metadata_only_corpus_is_an_error(tmp_path: Path, fake_embedder: Embedder) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("date 2024-03-01\n", encoding="utf-8")
    (corpus / "b.md").write_text("---\ntitle: Only meta\n---\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="only metadata"):
        build_index(corpus, tmp_path / "ix", embedder=fake_embedder)
    assert not index_exists(tmp_path / "ix")


def test_index_path_that_is_a_file(corpus_dir: Path, tmp_path: Path,
                                   fake_embedder: Embedder) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(QAError, match="is a file"):
        build_index(corpus_dir, tmp_path / "file", embedder=fake_embedder)


def test_save_load_gives_the_same_ranking(real_index: index_mod.Index, tmp_path: Path,
                                          real_embedder: Embedder) -> None:
    """The index as loaded from disk ranks exactly as the one built in memory would."""
    reloaded = load_index(real_index.path.parent, embedder=real_embedder)
    for q in ["Quand Poutine est-il allé à Pyongyang ?", "How many shells?", "Kim Kozlov"]:
        a = retrieve(real_index, prepare(real_index, q), k=10)
        b = retrieve(reloaded, prepare(reloaded, q), k=10)
        assert [(p.chunk, round(p.score, 6)) for p in a] == [
            (p.chunk, round(p.score, 6)) for p in b
        ]
        assert answer_question(real_index, q) == answer_question(reloaded, q)


def test_prune_keeps_foreign_folders(corpus_dir: Path, tmp_path: Path,
                                     fake_embedder: Embedder,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_mod, "GRACE_SECONDS", 0.0)
    ix = tmp_path / "ix"
    (ix / "g-my-notes").mkdir(parents=True)
    for _ in range(3):
        (corpus_dir / "extra.txt").write_text(f"Texte {_} sur Pyongyang.", encoding="utf-8")
        build_index(corpus_dir, ix, embedder=fake_embedder)
    assert (ix / "g-my-notes").is_dir()
    assert len([p for p in ix.iterdir() if p.name.startswith("snap-")]) == 2


def test_index_exists(corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder) -> None:
    assert not index_exists(tmp_path / "ix")
    build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder)
    assert index_exists(tmp_path / "ix")


def test_chunk_vectors_are_the_weighted_mean_of_their_sentences(
    corpus_dir: Path, tmp_path: Path
) -> None:
    emb = CountingEmbedder()
    build_index(corpus_dir, tmp_path / "ix", embedder=emb, chunk_size=400, chunk_overlap=50)
    index = load_index(tmp_path / "ix", embedder=emb)
    sentence_texts = {index.doc(s.doc_id).text[s.start : s.end]
                      for s in map(index.sentence, range(len(index.segments[0].sentences)))}
    assert set(emb.seen) <= sentence_texts | set(
        w for seg in index.segments for w in seg.words)  # no chunk text was embedded
    seg = index.segments[0]
    checked = 0
    for cid in list(index.live_chunk_ids())[:40]:
        c = index.chunk(cid)
        sids = index.sentences_of_chunk(cid)
        spans = [index.sentence(i) for i in sids]
        weights = np.array([min(s.end, c.end) - max(s.start, c.start) for s in spans], float)
        expected = weights @ emb.embed([index.doc(c.doc_id).text[s.start : s.end]
                                        for s in spans])
        # Contextual chunks: the heading path counts as one more sentence, by its length.
        section = chunking_mod.chunk_section(index.doc(c.doc_id), c.start, c.end)
        if section:
            expected += len(section) * emb.embed([section])[0]
        expected /= np.linalg.norm(expected)
        got = seg.vectors.vectors(np.array([cid]))[0]
        assert float(got @ expected) > 0.99  # float16 storage, int8 nowhere on this path
        checked += 1
    assert checked == 40
