"""Storage behind the index: vector stores, the lexical index, immutable segments."""
