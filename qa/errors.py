"""Errors the library raises. Messages are written for the person running `qa`."""


class QAError(Exception):
    """Base class: anything a user can act on."""


class CorpusError(QAError):
    """The corpus folder is missing, or holds no readable document."""


class IndexNotFoundError(QAError):
    """No index has been built at the given path."""


class IndexMismatchError(QAError):
    """The index on disk was built with another format, embedder or settings."""


class IndexDamagedError(IndexMismatchError):
    """The index exists but CURRENT or its snapshot cannot be used; the message names the
    newest intact snapshot and the command that restores it."""


class EmbedderError(QAError):
    """An embedding backend is missing or failed to load."""


class InvalidQuestionError(QAError):
    """The question or its options are not acceptable."""


class DocumentNotFoundError(QAError):
    """A doc_id that is not in the index."""


class QuestionSetError(QAError):
    """A question file for `qa eval` is malformed."""


class IndexBusyError(QAError):
    """Another writer holds the index folder."""


class IndexWriteError(QAError):
    """The index could not be written (full disk, read-only folder, ...); nothing changed.
    `errno` is the operating system's error number, when there is one."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class ClusterError(QAError):
    """Ray is missing, or its cluster cannot be reached or fails (`qa index --ray`)."""
