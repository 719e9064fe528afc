"""Sleep: compaction with consolidation semantics (NREM replay, REM abstraction, PRUNE)."""
