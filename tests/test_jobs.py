"""Process set-up shared by every job."""

import subprocess
import sys

import pytest

# Allocates and frees the same 16 MB buffers 50 times, as training passes do, and prints the minor
# page faults this caused: freed memory handed back to the kernel has to be faulted in again.
FAULTS = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from prosv.jobs import keep_freed_memory
    assert keep_freed_memory()
x = torch.randn(8, 109, 576)
for _ in range(3):
    (x.repeat(1, 1, 8) * 2).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    y = x.repeat(1, 1, 8)
    z = y * 2
    del y, z
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_kept_freed_memory_is_reused_without_page_faults():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    default, kept = faults("default"), faults("keep")
    assert default > 10_000  # glibc's defaults: each 16 MB buffer comes back from the kernel page by page
    assert kept < default / 100
