"""The Space under load: 100 concurrent class-sampling visitors, and the time to a first preview.

Starts the app in this process exactly as `python app.py` serves it (two heavy jobs at a time,
a queue sized so that a waiting visitor is served within ``app.MAX_WAIT_S``), then:

1. **first preview**: one request through ``gradio_client``'s ``submit``; seconds from the
   click to the first streamed preview and to the final grid (target: first preview within
   2 s on the CPU);
2. **load**: 100 requests at once from 100 threads, each the Class sampling tab's first
   request (4 classes x 8 samples, 50 steps by default: the tab's default until the sampler
   moved to 30, so the load it measures is an upper bound); how many were served, refused
   ("queue is full") or failed, latency percentiles against the stated wait limit, and the
   process's peak memory. Target: none failed, none refused whose wait would have stayed under
   the limit.

    python bench/space_load.py [--requests 100] [--n-per-class 8] [--steps 50]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py sits at the repository root; importing it starts nothing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--n-per-class", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()

    from gradio_client import Client

    import app

    demo, url = app.serve_in_background()
    request = (
        "fmnist-smallcnn-der",
        ["T-shirt/top", "Trouser", "Sneaker", "Bag"],
        args.n_per_class,
        "local_pca",
        False,
        False,
        args.steps,
        0,
    )
    try:
        client = Client(url, verbose=False, analytics_enabled=False)
        client.predict(*request, api_name="/class_sampling")  # warm-up: loads the preset once

        started = time.perf_counter()
        job = client.submit(*request, api_name="/class_sampling")
        first = None
        while not job.done():
            if first is None and job.outputs():
                first = time.perf_counter() - started
            time.sleep(0.01)
        total = time.perf_counter() - started
        first = first if first is not None else total
        print(
            f"one request ({4 * args.n_per_class} samples, {args.steps} steps): first preview "
            f"after {first:.2f} s (target <= 2 s), final grid after {total:.2f} s, "
            f"{len(job.outputs())} updates streamed"
        )

        served, full, failed, latencies = 0, 0, [], []
        lock = threading.Lock()

        def one() -> None:
            nonlocal served, full
            t0 = time.perf_counter()
            try:
                Client(url, verbose=False, analytics_enabled=False).predict(
                    *request, api_name="/class_sampling"
                )
                with lock:
                    served += 1
                    latencies.append(time.perf_counter() - t0)
            except Exception as err:  # the client raises on a full queue, as users see it
                with lock:
                    if "queue is full" in str(err).lower():
                        full += 1
                    else:
                        failed.append(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=one) for _ in range(args.requests)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.requests} concurrent requests (queue of {app.QUEUE_SIZE}, "
            f"{app.HEAVY_CONCURRENCY} at a time): {served} served, {full} told the queue was "
            f"full, {len(failed)} failed; wall {wall:.1f} s"
        )
        if latencies:
            print(
                f"latency of served requests: p50 {pct(0.5):.1f} s, p90 {pct(0.9):.1f} s, "
                f"max {latencies[-1]:.1f} s (stated limit {app.MAX_WAIT_S} s), "
                f"mean {statistics.mean(latencies):.1f} s"
            )
        print(f"peak memory of the process (app + clients): {peak:.0f} MiB")
        for line in failed[:3]:
            print("failure:", line)
    finally:
        demo.close()


if __name__ == "__main__":
    main()
