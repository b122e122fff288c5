"""Exec wrapper that makes a child die with the thread that spawned it.

Run as `python -I -S _orphan_guard.py <parent pid> <signal number> <program> [args...]`: it asks the kernel to send
<signal> when the spawning thread exits (prctl PR_SET_PDEATHSIG, which survives exec), checks that the parent is
still the one it was started by (closing the race where the parent died first), then execs the program. So even a
SIGKILL of a test runner or of `make run` leaves no etcd, kube-apiserver or Envoy behind. Linux only.
"""

import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1

expected_parent, death_signal, program = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
    sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
if os.getppid() != expected_parent:
    sys.exit(0)  # the parent is already gone: do not start an orphan
os.execvp(program, sys.argv[3:])  # noqa: S606 - exec is the point
