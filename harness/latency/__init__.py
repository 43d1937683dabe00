"""Latency and efficiency measurement behind the ``latency`` suite.

``timing`` runs a callable through pytest-benchmark's own ``BenchmarkFixture`` (its timer, its
calibration of rounds to the clock's resolution, its warm-up, its garbage-collector switch) and
adds what a model benchmark also needs: pinned torch threads, device synchronisation and
percentiles with distribution-free intervals. ``scenarios`` builds the inputs and runs the
single-stream, offline and server scenarios; ``cost`` measures parameters, size, memory, FLOPs
and a matmul peak; ``variants`` makes the int8 copy; ``export`` writes pytest-benchmark JSON.
Everything here imports torch lazily, inside functions.
"""
