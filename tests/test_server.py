"""The HTTP server, started for real (uvicorn on a free loopback port) and called over HTTP."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from inference import NewsExtractor  # noqa: E402
from inference.server import ServerLimits, create_app  # noqa: E402

SENTENCE = "John Smith works for Acme Corp in Boston ."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


@contextmanager
def running(extractor: NewsExtractor, run: Path, limits: ServerLimits = ServerLimits()) -> Iterator[str]:
    """A uvicorn server in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(extractor, run, limits), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def call(url: str, body: bytes | dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    """(status, JSON body) of a GET (no body) or POST."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def extractor(tiny_run: Path) -> NewsExtractor:
    return NewsExtractor.from_pretrained(tiny_run)


@pytest.fixture(scope="module")
def server(extractor: NewsExtractor, tiny_run: Path) -> Iterator[str]:
    limits = ServerLimits(max_body_bytes=20_000, max_articles=5, max_chars=2_000, max_wait_ms=300)
    with running(extractor, tiny_run, limits) as url:
        yield url


def test_extract_one_article_matches_the_python_api(server: str, extractor: NewsExtractor):
    status, body = call(f"{server}/extract", {"text": SENTENCE, "id": "a1"})
    assert status == 200
    assert body == extractor.extract(SENTENCE, id="a1").to_dict()
    assert body["entities"], "the tiny run finds entities in a training sentence"


def test_extract_a_list_keeps_order_ids_and_min_score(server: str, extractor: NewsExtractor):
    status, body = call(f"{server}/extract", {"articles": [{"text": SENTENCE, "id": "x"}, {"text": ""}], "min_score": 0.5})
    assert status == 200
    assert [a["id"] for a in body["articles"]] == ["x", "1"]
    expected = extractor.extract(SENTENCE, id="x", min_score=0.5).to_dict()
    assert body["articles"][0] == expected and body["articles"][1]["entities"] == []


def test_concurrent_requests_share_model_calls(server: str):
    before = call(f"{server}/health")[1]["batching"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: call(f"{server}/extract", {"text": SENTENCE, "id": str(k)}), range(8)))
    assert all(status == 200 for status, _ in results)
    assert [body["id"] for _, body in results] == [str(k) for k in range(8)], "each caller gets its own article"
    after = call(f"{server}/health")[1]["batching"]
    assert after["jobs"] - before["jobs"] == 8
    assert after["model_calls"] - before["model_calls"] < 8, "requests arriving together are batched"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 422, "JSON decode error"),
        ({"text": SENTENCE, "articles": []}, 422, "either 'text'"),
        ({"articles": [{"text": "a"}] * 6}, 413, "the limit is 5"),
        ({"text": "x" * 2_001}, 413, "2001 characters"),
        ({"text": SENTENCE, "min_score": 1.5}, 422, "must be a number in [0, 1]"),
        ({"text": SENTENCE, "min_score": {"Nope": 0.5}}, 422, "unknown labels"),
        (b"[" + b" " * 30_000 + b"]", 413, "over 20000 bytes"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(server: str, body, status: int, message: str):
    code, answer = call(f"{server}/extract", body)
    assert code == status
    assert message in json.dumps(answer)


def test_model_and_health_describe_the_run(server: str):
    status, model = call(f"{server}/model")
    assert status == 200
    assert model["entity_labels"] == ["Loc", "Org", "Peop"]
    assert model["relation_labels"] == ["Live_In", "OrgBased_In", "Work_For"]
    assert model["encoder"] == "minilm" and model["calibration"]["calibrated"]
    assert call(f"{server}/health")[1]["status"] == "ok"
    with urllib.request.urlopen(f"{server}/docs", timeout=10) as page:
        assert b"swagger" in page.read().lower()


def test_a_slow_request_times_out_with_504(extractor: NewsExtractor, tiny_run: Path):
    with running(extractor, tiny_run, ServerLimits(timeout_s=0.001)) as url:
        status, body = call(f"{url}/extract", {"text": SENTENCE * 50})
    assert status == 504 and "took over" in body["detail"]


def test_serve_command_binds_loopback(tiny_run: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "inference", "serve", "--model", str(tiny_run), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                status, body = call(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert status == 200 and body["status"] == "ok"
        own = own_address()
        if own is not None:
            with pytest.raises(OSError):
                socket.create_connection((own, port), timeout=2).close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert "127.0.0.1" in proc.stdout.read()


def test_too_much_waiting_gets_503_and_the_queue_drains(extractor: NewsExtractor, tiny_run: Path):
    with running(extractor, tiny_run, ServerLimits(max_queue=1, max_wait_ms=1000)) as url:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda k: call(f"{url}/extract", {"text": SENTENCE, "id": str(k)}), range(3)))
        statuses = sorted(status for status, _ in answers)
        assert statuses[0] == 200 and 503 in statuses
        assert all("waiting" in body["detail"] for status, body in answers if status == 503)
        assert call(f"{url}/extract", {"text": SENTENCE})[0] == 200, "accepted again once the batch ran"
