"""A run on disk: the loop over training and evaluation epochs with checkpoints and resume
(:mod:`~cosim.run.experiment`), the run directory (:mod:`~cosim.run.rundir`), stopping at safe
points on SIGINT / SIGTERM (:mod:`~cosim.run.signals`) and the clocks of the benchmarks
(:mod:`~cosim.run.profiling`).
"""
