"""The gateway client against the emulator, over real HTTP on 127.0.0.1.

No patching and no mock transport: every test starts a real server, so timeouts, keep-alive,
Retry-After and the never-pay-twice rule are exercised on real sockets. Coroutines run under
``asyncio.run`` (pytest-asyncio is not a dependency).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from PIL import Image

from assetgen import catalog
from assetgen.errors import (
    AuthenticationFailed,
    DownloadFailed,
    GatewayError,
    GatewayUnreachable,
    InsufficientBalance,
    InvalidRequest,
    RateLimited,
    ServerError,
    SubmissionUncertain,
    TaskNotFound,
)
from assetgen.providers.client import (
    DEFAULT_BASE_URL,
    GatewayClient,
    ResultImage,
    Task,
    refuses_n,
)
from assetgen.testing.emulator import Faults, GatewayEmulator

KEY = "sk-live-SECRET-7f3a9c"
SIZE = (64, 48)
BODY: dict[str, Any] = {
    "model": "gemini-3.1-flash-image-preview", "action": "generate", "prompt": "a red fox",
    "n": 1, "seed": -1, "aspect_ratio": "1:1", "resolution": "1K",
}
T = TypeVar("T")


def make_client(emu: GatewayEmulator, **kwargs: Any) -> GatewayClient:
    options: dict[str, Any] = dict(api_key=KEY, base_url=emu.base_url, timeout=5.0,
                                   max_retries=5, backoff_base=0.01, backoff_max=0.05)
    options.update(kwargs)
    return GatewayClient(**options)


def run(emu: GatewayEmulator, use: Callable[[GatewayClient], Awaitable[T]], **kwargs: Any) -> T:
    """Run ``use(client)`` with a fresh client that is always closed."""

    async def main() -> T:
        async with make_client(emu, **kwargs) as client:
            assert KEY not in repr(client)
            return await use(client)

    return asyncio.run(main())


def fails(exc_type: type[GatewayError], emu: GatewayEmulator,
          use: Callable[[GatewayClient], Awaitable[Any]], **kwargs: Any) -> GatewayError:
    """Assert that ``use`` raises ``exc_type``, and that the key shows nowhere in the error."""
    with pytest.raises(exc_type) as info:
        run(emu, use, **kwargs)
    exc: BaseException | None = info.value
    while exc is not None:  # the whole chain, since tracebacks print causes too
        assert KEY not in str(exc) and KEY not in repr(exc)
        exc = exc.__cause__ or exc.__context__
    return info.value


async def wait_done(client: GatewayClient, task_id: str, interval: float = 0.02) -> Task:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        task = await client.get(task_id)
        if task.terminal:
            return task
        await asyncio.sleep(interval)
    raise AssertionError("task did not finish")


@pytest.fixture
def emu() -> Iterator[GatewayEmulator]:
    with GatewayEmulator(api_key=KEY, image_size=SIZE) as emulator:
        yield emulator


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        return img.size


# -- the happy path ------------------------------------------------------------------------------


def test_submit_poll_download_lifecycle() -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, queue_time=0.1, latency=0.3) as emu:

        async def use(client: GatewayClient) -> tuple[Task, list[Task], list[bytes]]:
            first = await client.submit({**BODY, "n": 2})
            seen = []
            while not (task := await client.get(first.task_id)).terminal:
                seen.append(task)
                await asyncio.sleep(0.03)
            return first, [*seen, task], [await client.download(i) for i in task.images]

        first, seen, files = run(emu, use)
    assert first.status == "queued" and first.progress == 0 and not first.terminal
    assert first.model == BODY["model"]
    statuses = [t.status for t in seen]
    assert "processing" in statuses and statuses[-1] == "completed"
    assert [t.progress for t in seen] == sorted(t.progress for t in seen)
    done = seen[-1]
    assert done.progress == 100 and len(done.images) == 2
    assert done.completed_at is not None and done.created_at is not None
    assert 0.25 < done.completed_at - done.created_at < 0.5
    assert all(img.expires_at and img.expires_at > time.time() + 3600 for img in done.images)
    assert [jpeg_size(f) for f in files] == [SIZE, SIZE]
    assert files[0] != files[1]
    assert len(emu.submissions) == 1


def test_download_has_the_catalog_pixel_size() -> None:
    body = {**BODY, "aspect_ratio": "16:9", "resolution": "0.5K"}
    with GatewayEmulator(api_key=KEY) as emu:

        async def use(client: GatewayClient) -> bytes:
            task = await wait_done(client, (await client.submit(body)).task_id)
            return await client.download(task.images[0])

        data = run(emu, use)
    assert jpeg_size(data) == catalog.pixel_size("16:9", "0.5K")


def test_same_prompt_gives_distinct_files_per_task(emu: GatewayEmulator) -> None:
    async def use(client: GatewayClient) -> list[bytes]:
        out = []
        for _ in range(2):
            task = await wait_done(client, (await client.submit(BODY)).task_id)
            out += [await client.download(task.images[0]), await client.download(task.images[0])]
        return out

    a1, a2, b1, _ = run(emu, use)
    assert a1 == a2 and a1 != b1


@pytest.mark.parametrize("as_list", [False, True])
def test_result_url_as_string_or_list(as_list: bool) -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, url_as_list=as_list) as emu:

        async def use(client: GatewayClient) -> tuple[Task, list[bytes]]:
            task = await wait_done(client, (await client.submit({**BODY, "n": 3})).task_id)
            return task, [await client.download(i) for i in task.images]

        task, files = run(emu, use)
        raw = emu.state(task.task_id)["result"]["images"][0]["url"]
    assert isinstance(raw, list) is as_list
    assert len(task.images) == 3 and all(isinstance(i.url, str) for i in task.images)
    assert all(jpeg_size(f) == SIZE for f in files)


def test_url_list_with_several_images_shares_expiry() -> None:
    task = Task.from_json({
        "task_id": "t1", "status": "completed", "progress": 100,
        "result": {"images": [{"url": ["https://x/a.jpg", "https://x/b.jpg"], "expires_at": 5},
                              {"url": "https://x/c.jpg", "expires_at": 7}]},
    })
    assert task.images == (ResultImage("https://x/a.jpg", 5), ResultImage("https://x/b.jpg", 5),
                           ResultImage("https://x/c.jpg", 7))


@pytest.mark.parametrize("in_seconds", [False, True])
def test_timestamps_are_normalised_to_seconds(in_seconds: bool) -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, timestamps_in_seconds=in_seconds) as emu:

        async def use(client: GatewayClient) -> Task:
            return await wait_done(client, (await client.submit(BODY)).task_id)

        task = run(emu, use)
        raw = emu.state(task.task_id)["created_at"]
    assert (raw < 1e11) is in_seconds
    assert task.created_at is not None and task.completed_at is not None
    assert abs(task.created_at - time.time()) < 5 and abs(task.completed_at - time.time()) < 5


def test_failed_task_carries_the_server_message() -> None:
    with GatewayEmulator(api_key=KEY, faults=Faults(fail_prompts={"forbidden"})) as emu:

        async def use(client: GatewayClient) -> Task:
            task = await client.submit({**BODY, "prompt": "something forbidden"})
            return await wait_done(client, task.task_id)

        task = run(emu, use)
    assert task.status == "failed" and task.terminal and task.progress == 0
    assert task.error_code == "task_failed" and "safety" in (task.error_message or "")


# -- errors that are not retried -----------------------------------------------------------------


def test_400_is_not_retried(emu: GatewayEmulator) -> None:
    exc = fails(InvalidRequest, emu, lambda c: c.submit({**BODY, "model": "dall-e-9"}))
    assert exc.status == 400 and "dall-e-9" in str(exc)
    assert emu.count("POST", "/v1/tasks") == 1 and emu.submissions == []


def test_reference_data_urls_are_checked(emu: GatewayEmulator) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    good = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    bad = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    edit = {**BODY, "action": "edit"}
    run(emu, lambda c: c.submit({**edit, "image_urls": [good, "https://example.com/a.png"]}))
    exc = fails(InvalidRequest, emu, lambda c: c.submit({**edit, "image_urls": [bad]}))
    assert "image_urls[0]" in str(exc)
    fails(InvalidRequest, emu, lambda c: c.submit({**edit, "image_urls": ["ftp://x/a.png"]}))
    assert len(emu.submissions) == 1


def test_401_names_the_env_var_and_hides_the_key(emu: GatewayEmulator) -> None:
    wrong = "sk-wrong-KEY-000111"
    exc = fails(AuthenticationFailed, emu, lambda c: c.submit(BODY), api_key=wrong)
    assert "ASSETGEN_API_KEY" in str(exc) and "Invalid API key" in str(exc)
    assert wrong not in str(exc) and wrong not in repr(exc)
    assert exc.status == 401 and emu.count("POST", "/v1/tasks") == 1
    assert [r.auth for r in emu.requests] == ["invalid"]


def test_402_after_the_balance_runs_out() -> None:
    with GatewayEmulator(api_key=KEY, faults=Faults(insufficient_balance_after=2)) as emu:

        async def two(client: GatewayClient) -> list[Task]:
            return [await client.submit(BODY), await client.submit(BODY)]

        assert len(run(emu, two)) == 2
        exc = fails(InsufficientBalance, emu, lambda c: c.submit(BODY))
        assert exc.status == 402 and len(emu.submissions) == 2


def test_404_on_a_forgotten_task(emu: GatewayEmulator) -> None:
    task = run(emu, lambda c: c.submit(BODY))
    emu.forget(task.task_id)
    exc = fails(TaskNotFound, emu, lambda c: c.get(task.task_id))
    assert exc.status == 404 and emu.count("GET", "/v1/tasks/") == 1
    fails(TaskNotFound, emu, lambda c: c.get("no-such-task"))


# -- retries -------------------------------------------------------------------------------------


def test_429_burst_is_retried_and_paid_once(emu: GatewayEmulator) -> None:
    emu.faults.rate_limit_burst = 3
    task = run(emu, lambda c: c.submit(BODY))
    assert task.status == "queued"
    assert emu.count("POST", "/v1/tasks") == 4 and len(emu.submissions) == 1


def test_retry_after_http_date_is_honoured_and_capped(emu: GatewayEmulator) -> None:
    # A date 2-3 s ahead (HTTP dates have whole seconds) is capped at backoff_max.
    emu.faults.retry_after = email.utils.formatdate(time.time() + 3, usegmt=True)
    emu.faults.rate_limit_burst = 1
    start = time.monotonic()
    run(emu, lambda c: c.submit(BODY), backoff_max=0.3)
    assert 0.28 <= time.monotonic() - start < 2
    assert len(emu.submissions) == 1


def test_rate_limit_exhausted(emu: GatewayEmulator) -> None:
    emu.faults.rate_limit_burst = 100
    emu.faults.retry_after = None
    exc = fails(RateLimited, emu, lambda c: c.submit(BODY), max_retries=2)
    assert "Too many requests" in str(exc) and emu.count("POST", "/v1/tasks") == 3
    assert emu.submissions == []


def test_5xx_is_retried(emu: GatewayEmulator) -> None:
    task = run(emu, lambda c: c.submit(BODY))
    emu.faults.server_errors = 3
    assert run(emu, lambda c: c.get(task.task_id)).task_id == task.task_id
    assert emu.count("GET", "/v1/tasks/") == 4


def test_retries_exhausted_raise_server_error(emu: GatewayEmulator) -> None:
    emu.faults.server_errors = 100
    client_box: list[GatewayClient] = []

    async def use(client: GatewayClient) -> Task:
        client_box.append(client)
        return await client.get("task-unknown")

    exc = fails(ServerError, emu, use, max_retries=2)
    assert "(emulated)" in str(exc) and exc.status in (500, 503)
    assert emu.count("GET", "/v1/tasks/") == 3 and client_box[0].requests_made == 3


def test_a_5xx_on_submit_is_never_resent(emu: GatewayEmulator) -> None:
    """The body reached the server before it failed: the task may exist, so a resend could pay twice
    (the provider reports the key uncertain). A 429 is refused before any work and is resent."""
    emu.faults.server_errors = 1
    exc = fails(ServerError, emu, lambda c: c.submit(BODY), max_retries=5)
    assert exc.status == 503 and emu.count("POST", "/v1/tasks") == 1
    emu.faults.rate_limit_burst = 2
    assert run(emu, lambda c: c.submit(BODY)).status == "queued"
    assert emu.count("POST", "/v1/tasks") == 4 and len(emu.submissions) == 1


def test_download_failure_is_retried_without_resubmitting(emu: GatewayEmulator) -> None:
    async def use(client: GatewayClient) -> bytes:
        task = await wait_done(client, (await client.submit(BODY)).task_id)
        emu.faults.download_failures = 2
        return await client.download(task.images[0])

    assert jpeg_size(run(emu, use)) == SIZE
    assert emu.count("GET", "/files/") == 3 and len(emu.submissions) == 1


def test_download_failures_exhausted(emu: GatewayEmulator) -> None:
    async def use(client: GatewayClient) -> bytes:
        task = await wait_done(client, (await client.submit(BODY)).task_id)
        emu.faults.download_failures = 100
        return await client.download(task.images[0])

    exc = fails(DownloadFailed, emu, use, max_retries=1)
    assert exc.status == 500 and emu.count("GET", "/files/") == 2


def test_expired_url_fails_without_retry(emu: GatewayEmulator) -> None:
    async def use(client: GatewayClient) -> bytes:
        task = await wait_done(client, (await client.submit(BODY)).task_id)
        emu.expire_urls()
        return await client.download(task.images[0])  # the client still thinks it is valid

    exc = fails(DownloadFailed, emu, use)
    assert "expired" in str(exc) and exc.status == 410
    assert emu.count("GET", "/files/") == 1 and len(emu.submissions) == 1


def test_expired_403_by_the_clock_is_not_retried(emu: GatewayEmulator) -> None:
    # A CDN that answers 403 once the signature expired: known from expires_at, not retried.
    image = ResultImage(url=f"{emu.base_url}/files/task-unknown/0.jpg", expires_at=time.time() - 1)
    exc = fails(DownloadFailed, emu, lambda c: c.download(image))
    assert "expired" in str(exc) and emu.count("GET", "/files/") == 1


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_queued_task() -> None:
    with GatewayEmulator(api_key=KEY, queue_time=5, latency=6) as emu:

        async def use(client: GatewayClient) -> tuple[Task, Task]:
            task = await client.submit(BODY)
            return await client.cancel(task.task_id), await client.get(task.task_id)

        cancelled, again = run(emu, use)
        assert emu.cancelled == [cancelled.task_id]
    assert cancelled.status == again.status == "cancelled" and again.terminal


def test_cancel_processing_task_is_refused() -> None:
    with GatewayEmulator(api_key=KEY, latency=5) as emu:

        async def use(client: GatewayClient) -> Task:
            return await client.cancel((await client.submit(BODY)).task_id)

        exc = fails(InvalidRequest, emu, use)
        assert "only queued tasks can be cancelled" in str(exc) and emu.cancelled == []
        assert emu.count("POST", "/v1/tasks/") == 1  # the cancel, not retried


# -- never pay twice, never leak the key ---------------------------------------------------------


def test_submit_timeout_is_uncertain_and_not_resent() -> None:
    with GatewayEmulator(api_key=KEY, faults=Faults(submit_timeout=2.0)) as emu:
        exc = fails(SubmissionUncertain, emu, lambda c: c.submit(BODY), timeout=0.3)
        assert "not resent" in str(exc) and "paying twice" in str(exc)
        assert emu.count("POST", "/v1/tasks") == 1
        assert len(emu.tasks) == 1  # the server did take it: a resend would have paid twice


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_then_unreachable() -> None:
    dead = GatewayEmulator(api_key=KEY)
    dead.base_url = f"http://127.0.0.1:{closed_port()}"
    boxes: list[GatewayClient] = []

    async def submit(client: GatewayClient) -> Task:
        boxes.append(client)
        return await client.submit(BODY)  # nothing was sent, so retrying cannot pay twice

    fails(GatewayUnreachable, dead, submit, max_retries=2)
    fails(GatewayUnreachable, dead, lambda c: c.get("t1"), max_retries=2)
    assert boxes[0].requests_made == 3


def test_key_is_sent_only_to_the_gateway_origin(emu: GatewayEmulator) -> None:
    with GatewayEmulator(api_key="cdn-key", image_size=SIZE) as cdn:
        foreign = run(cdn, lambda c: wait_done_after_submit(c), api_key="cdn-key")

        async def use(client: GatewayClient) -> list[bytes]:
            own = await wait_done(client, (await client.submit(BODY)).task_id)
            return [await client.download(own.images[0]), await client.download(foreign.images[0])]

        files = run(emu, use)
        assert [jpeg_size(f) for f in files] == [SIZE, SIZE]
        assert [r.auth for r in emu.requests if r.path.startswith("/files/")] == ["valid"]
        assert [r.auth for r in cdn.requests if r.path.startswith("/files/")] == [None]


async def wait_done_after_submit(client: GatewayClient) -> Task:
    return await wait_done(client, (await client.submit(BODY)).task_id)


# -- the provider's other documented dialect (issue 13) ------------------------------------------


def test_submit_answer_code_data_is_read_as_a_queued_task() -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, submit_answer="code_data") as emu:

        async def use(client: GatewayClient) -> tuple[Task, Task]:
            first = await client.submit(BODY)
            return first, await wait_done(client, first.task_id)

        first, done = run(emu, use)
        assert first.task_id in emu.tasks and first.status == "queued" and first.progress == 0
        assert done.status == "completed" and len(done.images) == 1 and len(emu.submissions) == 1


def test_submit_answer_with_another_code_names_it_and_is_uncertain() -> None:
    # A 2xx may have created a task whatever its code says: never "nothing paid" (review finding 6).
    with GatewayEmulator(api_key=KEY, submit_answer="code_error") as emu:
        exc = fails(SubmissionUncertain, emu, lambda c: c.submit(BODY))
        assert "'quota_exceeded'" in str(exc) and "Daily quota exceeded" in str(exc)
        assert exc.code == "quota_exceeded" and emu.tasks == {}


def test_any_other_2xx_submit_answer_is_uncertain_and_not_resent() -> None:
    with GatewayEmulator(api_key=KEY, submit_answer="garbage") as emu:
        exc = fails(SubmissionUncertain, emu, lambda c: c.submit(BODY))
        assert "not resent" in str(exc) and exc.status == 200
        assert emu.count("POST", "/v1/tasks") == 1 and len(emu.tasks) == 1   # paid, id unknown


@pytest.mark.parametrize("answer", [{"code": "success", "data": ""}, {"code": "success", "data": 42},
                                    {"code": "success", "data": "../../x"}, {"code": "success"}])
def test_code_data_answer_without_a_usable_id_is_uncertain(answer: dict[str, Any]) -> None:
    client = GatewayClient(api_key=KEY, base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="unusable"):
        client._code_answer(answer, 200)


def test_task_object_inside_the_code_envelope_is_read() -> None:
    task = Task.from_json({"code": "success", "data": {"task_id": "task-wave1", "status": "processing",
                                                       "progress": 40}})
    assert (task.task_id, task.status, task.progress) == ("task-wave1", "processing", 40)


def test_n_fixed_at_1_is_a_400_about_n_that_refuses_n_recognises() -> None:
    with GatewayEmulator(api_key=KEY, n_fixed_at_1=True, prompt_limit=20) as emu:
        refused = fails(InvalidRequest, emu, lambda c: c.submit({**BODY, "n": 3}))
        assert refuses_n(refused) and refused.status == 400 and emu.tasks == {}
        too_long = fails(InvalidRequest, emu, lambda c: c.submit({**BODY, "prompt": "p" * 21}))
        assert "maximum 20 characters" in str(too_long) and not refuses_n(too_long)
        other = fails(InvalidRequest, emu, lambda c: c.submit({**BODY, "model": "dall-e-9"}))
        assert not refuses_n(other)
        assert run(emu, lambda c: c.submit(BODY)).status == "queued"   # n = 1 is accepted
    assert refuses_n(InvalidRequest("x", status=400, code="invalid_n"))
    assert refuses_n(InvalidRequest("The gateway refused the request: 'n' must be 1", status=400))
    assert not refuses_n(InvalidRequest("The gateway refused the request: n/a", status=400))
    assert not refuses_n(ServerError("n must be 1", status=500))


@pytest.mark.parametrize("ratio_field", ["aspect_ratio", "size", "both"])
def test_sending_both_ratio_fields_works_whichever_the_gateway_reads(ratio_field: str) -> None:
    body = {**BODY, "aspect_ratio": "16:9", "size": "16:9", "resolution": "0.5K"}
    with GatewayEmulator(api_key=KEY, ratio_field=ratio_field) as emu:  # type: ignore[arg-type]

        async def use(client: GatewayClient) -> bytes:
            task = await wait_done(client, (await client.submit(body)).task_id)
            return await client.download(task.images[0])

        assert jpeg_size(run(emu, use)) == catalog.pixel_size("16:9", "0.5K")


def test_a_gateway_that_reads_size_ignores_aspect_ratio() -> None:
    # What the issue warns about: only aspect_ratio sent to a size-reading gateway draws a square.
    body = {**BODY, "aspect_ratio": "16:9", "resolution": "0.5K"}
    with GatewayEmulator(api_key=KEY, ratio_field="size") as emu:

        async def use(client: GatewayClient) -> bytes:
            task = await wait_done(client, (await client.submit(body)).task_id)
            return await client.download(task.images[0])

        assert jpeg_size(run(emu, use)) == catalog.pixel_size("1:1", "0.5K")
        exc = fails(InvalidRequest, emu, lambda c: c.submit({**BODY, "size": "7:3"}))
        assert "size '7:3'" in str(exc)


def test_result_keyed_by_media_with_start_time() -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, result_shape="media", queue_time=0.05,
                         latency=0.1) as emu:
        task = run(emu, lambda c: wait_done_after_submit(c))
        assert len(task.images) == 1 and task.other_media == ()
        assert task.start_time is not None and task.created_at is not None
        assert 0.0 <= task.start_time - task.created_at < 1


def test_result_with_empty_images_and_media_elsewhere_is_exposed_not_an_error() -> None:
    with GatewayEmulator(api_key=KEY, image_size=SIZE, result_shape="videos") as emu:
        task = run(emu, lambda c: wait_done_after_submit(c))
    assert task.status == "completed" and task.images == () and task.other_media == ("videos",)
    assert task.start_time is not None


def test_both_documented_base_url_spellings_are_accepted() -> None:
    from assetgen.commands.build import make_provider

    provider = make_provider(None, offline=False, env={"ASSETGEN_API_KEY": KEY})
    assert provider.client.base_url == DEFAULT_BASE_URL == "https://www.qingbo.dev"  # type: ignore[attr-defined]
    asyncio.run(provider.aclose())
    bare = make_provider(None, offline=False, env={"ASSETGEN_API_KEY": KEY,
                                                   "ASSETGEN_BASE_URL": "https://qingbo.dev/"})
    assert bare.client.base_url == "https://qingbo.dev"  # type: ignore[attr-defined]
    asyncio.run(bare.aclose())


def test_submit_latency_answers_late_but_the_task_exists_at_once() -> None:
    with GatewayEmulator(api_key=KEY, submit_latency=0.4) as emu:

        async def use(client: GatewayClient) -> tuple[Task, int]:
            submit = asyncio.create_task(client.submit(BODY))
            await asyncio.sleep(0.2)
            seen = len(emu.tasks)
            return await submit, seen

        start = time.monotonic()
        task, seen_early = run(emu, use)
        assert time.monotonic() - start >= 0.4 and seen_early == 1 and task.task_id in emu.tasks
