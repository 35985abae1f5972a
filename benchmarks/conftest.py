import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--size-log2", type=int, default=None,
                     help="elements per benchmark as a power of two (default 24; 30 with -m huge)")


@pytest.fixture(scope="session")
def threads():
    return os.cpu_count() or 1


def timed_run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (KiB) of the largest process of ``argv``'s tree."""
    probe = ("import resource, subprocess, sys, time; t0 = time.perf_counter(); subprocess.run(sys.argv[1:], "
             "check=True, stdout=subprocess.DEVNULL); print(time.perf_counter() - t0, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], check=True, capture_output=True, text=True).stdout
    seconds, rss = out.split()
    return float(seconds), int(rss)


def rounds_against_dd(tmp_path: Path, generate: list[str], out: Path, nbytes: int, count: int = 3) -> list[dict]:
    """``count`` rounds of ``dd bs=16M conv=fsync`` of ``nbytes`` then ``generate`` (writing ``out``, a
    file or a directory, removed after each round) on the same disk, back to back (a virtual disk's
    speed varies from minute to minute: each ratio is of a pair): each round's seconds (dd scaled to
    the written size), the bytes written and the peak RSS."""
    rounds = []
    blocks = -(-nbytes // (16 << 20))
    for _ in range(count):
        dd_s, _ = timed_run(["dd", "if=/dev/zero", f"of={tmp_path / 'dd.bin'}", "bs=16M", f"count={blocks}",
                             "conv=fsync"])
        os.remove(tmp_path / "dd.bin")
        ours_s, rss = timed_run(generate)
        files = [out] if out.is_file() else list(out.iterdir())
        written = sum(f.stat().st_size for f in files)
        rounds.append({"bytes": written, "dd_s": dd_s * written / (blocks * (16 << 20)), "generate_s": ours_s,
                       "peak_rss_mib": rss / 1024, "files": len(files)})
        os.remove(out) if out.is_file() else shutil.rmtree(out)
    return rounds


def summary_against_dd(rounds: list[dict]) -> str:
    ratios = sorted(r["dd_s"] / r["generate_s"] for r in rounds)
    return (f"{rounds[0]['bytes'] / 1e9:.2f} GB in {rounds[0]['files']} files: generate "
            f"{min(r['generate_s'] for r in rounds):.1f}-{max(r['generate_s'] for r in rounds):.1f} s, dd "
            f"{min(r['dd_s'] for r in rounds):.1f}-{max(r['dd_s'] for r in rounds):.1f} s; "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}x of dd (median {ratios[len(ratios) // 2]:.2f}x); peak RSS "
            f"{max(r['peak_rss_mib'] for r in rounds):.0f} MiB")
