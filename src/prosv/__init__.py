"""prosv: prompt-only steering vectors, trained jointly (factor and direction), placed and evaluated."""

import os

# OpenMP threads that spin while waiting turn any CPU contention (another job, a judge server)
# into a tenfold slowdown of small models; passive waiting costs little when the cores are free.
# Must be set before torch loads its OpenMP runtime, hence here, first thing in the package.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
