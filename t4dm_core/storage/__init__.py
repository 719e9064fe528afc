"""Storage layer: file system abstraction, WAL, memtable, segments, manifest, lock."""
