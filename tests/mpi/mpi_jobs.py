"""Helpers shared by the mpirun tests: finding the process of one rank of a running job."""
import os


def rank_pid(rank, *words):
    """The pid of the process that Open MPI started as `rank` and whose command line contains every one of
    `words` (e.g. the sub-command and the output path that make the job unique); None when there is none."""
    needle = f"OMPI_COMM_WORLD_RANK={rank}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in env and all(w.encode() in cmdline for w in words):
            return int(pid)
    return None
