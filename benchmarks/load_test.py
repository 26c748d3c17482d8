"""Load test of `python -m inference serve` on loopback: many concurrent clients for a bounded time.

Starts the server on a free loopback port with the given run, warms it up with one round of
concurrent requests (memory is measured from there: the largest batch has been allocated), then
lets `--clients` threads post the article (default: the sample article) to /extract until
`--duration` seconds or `--max-requests` requests, whichever comes first. Reports requests/s,
latency percentiles, errors, the server's batching counters and its memory (RSS) at start, peak
and end; writes the result JSON with commit, machine, date and load average.

    .venv/bin/python benchmarks/load_test.py --model runs/conll04 --out benchmarks/results/server/load.json

Exits 1 when a target is missed: any error, or memory growth of 10% or more.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.corpora import shared_data_dir  # noqa: E402
from training.evaluate import provenance  # noqa: E402  (commit, machine, date)


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(latency)
            else:
                self.errors[error] = self.errors.get(error, 0) + 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def post(url: str, body: bytes, timeout: float) -> str | None:
    """None on 200, else a short error name."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return type(err).__name__


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    """The server in a subprocess, once /health answers."""
    proc = subprocess.Popen([sys.executable, "-m", "inference", "serve", "--model", str(model), "--port", str(port), *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start within 180 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="run directory")
    parser.add_argument("--article", type=Path, default=shared_data_dir() / "sample" / "mehr_qatar_iran.txt", help="text posted by every request")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path, help="result JSON")
    parser.add_argument("server_args", nargs="*", help="extra `serve` options after --, e.g. -- --max-batch 16")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = args.article.read_text(encoding="utf-8")
    body = json.dumps({"text": text, "id": args.article.name}).encode()
    url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    proc = start_server(args.model, port, args.server_args)
    try:
        rss_loaded = rss_mb(proc.pid)
        # Warm-up: one round of all clients at once, so the largest batch has been allocated once;
        # growth after that is what a long-running server would keep adding.
        with ThreadPoolExecutor(args.clients) as pool:
            warm = list(pool.map(lambda _: post(f"{url}/extract", body, args.request_timeout), range(args.clients)))
        assert not any(warm), f"warm-up requests failed: {warm}"
        rss_start = rss_mb(proc.pid)
        tally, peak = Tally(), [rss_start]
        end = time.monotonic() + args.duration

        def client() -> None:
            while time.monotonic() < end and tally.requests < args.max_requests:
                t0 = time.monotonic()
                error = post(f"{url}/extract", body, args.request_timeout)
                tally.add(time.monotonic() - t0, error)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        began = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak.append(rss_mb(proc.pid))
            time.sleep(0.5)
        elapsed = time.monotonic() - began
        rss_end = rss_mb(proc.pid)
        health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=10).read())
    finally:
        proc.terminate()
        proc.wait(30)

    growth = (rss_end - rss_start) / rss_start
    result = {
        "what": "load test of python -m inference serve on loopback (benchmarks/load_test.py)",
        "model": str(args.model),
        "article": {"path": str(args.article), "characters": len(text)},
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "requests": tally.requests,
        "ok": len(tally.latencies),
        "errors": tally.errors,
        "requests_per_s": round(len(tally.latencies) / elapsed, 2),
        "latency_s": {"p50": round(percentile(tally.latencies, 50), 3), "p90": round(percentile(tally.latencies, 90), 3),
                      "p99": round(percentile(tally.latencies, 99), 3), "max": round(max(tally.latencies, default=float("nan")), 3)},
        "server_rss_mb": {"model_loaded": round(rss_loaded, 1), "start": round(rss_start, 1), "peak": round(max(peak), 1), "end": round(rss_end, 1)},
        "rss_growth": round(growth, 4),
        "batching": health["batching"],
        "limits": health["limits"],
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **provenance(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if not tally.errors and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
