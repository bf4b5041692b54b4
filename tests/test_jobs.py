"""Process set-up shared by every job."""

import subprocess
import sys

import pytest

# Allocates and frees the same 16 MB buffers 50 times, as training passes do, and prints how many
# bytes of resident memory each free handed back to the kernel: those pages have to be faulted in
# again on the next pass. Resident memory, not the page-fault count: a host can add faults of its own
# on memory that was never handed back (automatic NUMA balancing's hinting faults would be such), and
# a CI run counted 7848 with the tuning on where our 2-core machine counts 0.
RETURNED = """
import os, sys, torch
if sys.argv[1] == "keep":
    from prosv.jobs import keep_freed_memory
    assert keep_freed_memory()
page = os.sysconf("SC_PAGE_SIZE")
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
x = torch.randn(8, 109, 576)
for _ in range(3):
    (x.repeat(1, 1, 8) * 2).sum()
returned = 0
for _ in range(50):
    y = x.repeat(1, 1, 8)
    z = y * 2
    before = resident()
    del y, z
    returned += max(0, before - resident())
print(returned)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_kept_freed_memory_stays_resident_for_the_next_pass():
    def returned(mode):
        out = subprocess.run([sys.executable, "-c", RETURNED, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    default, kept = returned("default"), returned("keep")
    assert default > 16 << 20  # glibc's defaults: over 50 passes, more than a buffer's worth goes back
    assert kept < 1 << 20
