"""A request id on every request (echoed in ``X-Request-Id``) and JSON log lines carrying it."""

from __future__ import annotations

import io
import json
import logging
import sys

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from claimflow.observability.logs import JsonFormatter, uvicorn_log_config
from claimflow.observability.request_id import RequestIdMiddleware, current_request_id


async def test_a_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_plain_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert response.headers["x-request-id"] == "lb-7f3a.42"


async def test_an_incoming_request_id_with_log_injection_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": 'x" level=error {"a'})
    assert response.headers["x-request-id"] != 'x" level=error {"a'
    assert len(response.headers["x-request-id"]) == 32


async def test_log_lines_written_during_a_request_carry_its_id() -> None:
    async def endpoint(_request: Request) -> PlainTextResponse:
        logging.getLogger("claimflow.test").warning("handling")
        return PlainTextResponse("ok")

    app = RequestIdMiddleware(Starlette(routes=[Route("/", endpoint)]))
    transport = httpx.ASGITransport(app=app)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("claimflow.test")
    logger.addHandler(handler)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.get("/", headers={"X-Request-Id": "req-1"})
            await http.get("/", headers={"X-Request-Id": "req-2"})
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line["request_id"]) for line in lines] == [
        ("handling", "req-1"),
        ("handling", "req-2"),
    ]
    assert current_request_id.get() is None


def test_json_lines_have_time_level_logger_message_and_exception() -> None:
    token = current_request_id.set("abc")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.getLogger("claimflow").makeRecord(
                "claimflow", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
            )
        line = json.loads(JsonFormatter().format(record))
    finally:
        current_request_id.reset(token)
    assert line["level"] == "error"
    assert line["logger"] == "claimflow"
    assert line["message"] == "failed x"
    assert line["request_id"] == "abc"
    assert line["time"].endswith("Z")
    assert "ValueError: boom" in line["exception"]


def test_text_is_the_default_and_json_is_chosen_by_setting() -> None:
    assert uvicorn_log_config("text") is None
    config = uvicorn_log_config("json")
    assert config is not None
    assert config["formatters"]["json"]["()"].endswith("JsonFormatter")
