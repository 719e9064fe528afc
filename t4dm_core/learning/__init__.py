"""Learning from use: what reads teach the store (access counts, co-retrieval, lability)."""
