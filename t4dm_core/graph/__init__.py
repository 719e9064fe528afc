"""Graph: merged edge state over segments (CSR-ordered on disk) and the memtable; traversal."""
