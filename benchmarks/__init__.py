"""Performance benchmarks: hatbot against the course's starter-kit bot (see docs/BENCHMARKS.md)."""
