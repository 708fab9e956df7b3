"""qa: offline question answering over a folder of documents, with exact citations."""

__version__ = "0.1.0"
