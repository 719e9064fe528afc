"""Vector indexes: HNSW per segment (hnswlib) and exact scoring."""
