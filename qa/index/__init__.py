"""Build, update and open the on-disk index: immutable segments named by snapshots.

Layout of an index folder (format 4)::

    index/
      CURRENT              name of the live snapshot (replaced atomically)
      LOCK                 held by the one writer at a time (flock)
      snap-<n>.json        a snapshot: format, embedder, chunking, counts, and its segments
                           with their deleted documents (a few KB, whatever the corpus)
      seg-<n>-<rand>/      an immutable segment with its document table (qa.store.segments)

One concept a module: `snapshot` (the typed commit point, CURRENT, the lock, commit and
prune), `reader` (`Index`, `load_index`, `open_index`), `live` (what a build starts from),
`writer` (`IndexWriter`, `build_index`), `merge` (the merge policy, a pure function of
segment metadata), `embed_cache` (embedding during a build), `checks` (verify, restore,
ANN recall).
"""

from qa.index.checks import ann_recall, restore_snapshot, verify_index
from qa.index.embed_cache import (
    CHUNK_VECTORS,
    EmbedCache,
    RemoteEmbed,
    chunk_tokens,
    chunk_tokens_of,
    default_workers,
    single_threaded_blas,
)
from qa.index.merge import MergePlan, MergePolicy, SegmentMeta, TieredMergePolicy
from qa.index.reader import (
    STALE_CHECK_MAX_FILES,
    Index,
    check_corpus,
    corpus_changes,
    load_index,
    open_index,
)
from qa.index.snapshot import (
    CURRENT,
    FORMAT_VERSION,
    GRACE_SECONDS,
    KEEP_SNAPSHOTS,
    LOCK,
    DocEntry,
    SegmentEntry,
    Snapshot,
    check_manifest,
    index_exists,
    live_generation,
    newest_intact_snapshot,
    read_manifest,
    snapshot_problem,
    writer_lock,
)
from qa.index.writer import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    BuildReport,
    IndexWriter,
    Progress,
    build_index,
)

__all__ = [
    "CHUNK_VECTORS", "CURRENT", "DEFAULT_CHUNK_OVERLAP", "DEFAULT_CHUNK_SIZE", "FORMAT_VERSION",
    "GRACE_SECONDS", "KEEP_SNAPSHOTS", "LOCK", "STALE_CHECK_MAX_FILES", "BuildReport",
    "DocEntry", "EmbedCache", "Index", "IndexWriter", "MergePlan", "MergePolicy", "Progress",
    "RemoteEmbed", "SegmentEntry", "SegmentMeta", "Snapshot", "TieredMergePolicy",
    "ann_recall", "build_index", "check_corpus", "check_manifest", "chunk_tokens",
    "chunk_tokens_of", "corpus_changes", "default_workers", "index_exists", "live_generation",
    "load_index", "newest_intact_snapshot", "open_index", "read_manifest", "restore_snapshot",
    "single_threaded_blas", "snapshot_problem", "verify_index", "writer_lock",
]
