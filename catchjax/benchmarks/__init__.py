"""Benchmark tables, search spaces, tasks, synthetic tables and data import (SPEC §1)."""
