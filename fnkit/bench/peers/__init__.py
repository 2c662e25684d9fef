"""The floors and peers the benchmark compares the functions with."""
