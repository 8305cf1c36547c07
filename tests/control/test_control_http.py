"""The control listener's HTTP/1.1 parser: strict, bounded, and one typed error for any
bytes (RFC 9112 message syntax; fuzzed with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.control.http import HttpError, Limits, Request, RequestParser, response


def parse(data: bytes, limits: Limits | None = None) -> Request | None:
    return RequestParser(limits).feed(data)


def status_of(data: bytes, limits: Limits | None = None) -> int:
    with pytest.raises(HttpError) as info:
        parse(data, limits)
    return info.value.status


def test_a_get_with_query_and_headers_is_parsed() -> None:
    request = parse(b"GET /links/lte%20one?token=a%2Bb&x=1 HTTP/1.1\r\nHost: h\r\n"
                    b"Authorization: Bearer t\r\nX-Two: a\r\nx-two: b\r\n\r\n")
    assert request is not None
    assert (request.method, request.path) == ("GET", "/links/lte one")
    assert request.query == {"token": "a+b", "x": "1"}
    assert request.header("authorization") == "Bearer t"
    assert request.header("X-Two") == "a, b"  # RFC 9110 §5.3: repeated fields combine
    assert request.body == b""


def test_a_body_is_read_to_its_content_length_even_when_split() -> None:
    parser = RequestParser()
    data = b'PUT /links/a HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n{"role":"backup"}'
    assert all(parser.feed(data[i:i + 1]) is None for i in range(len(data) - 1))
    request = parser.feed(data[-1:])
    assert request is not None and request.body == b'{"role":"backup"}'


def test_http_1_0_needs_no_host() -> None:
    request = parse(b"GET /status HTTP/1.0\r\n\r\n")
    assert request is not None and request.version == "HTTP/1.0"


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /status HTTP/1.1\r\n\r\n", 400),                                 # no Host (§3.2)
    (b"GET  /status HTTP/1.1\r\nHost: h\r\n\r\n", 400),                     # double space
    (b"GET status HTTP/1.1\r\nHost: h\r\n\r\n", 400),                       # not origin-form
    (b"GET http://x/status HTTP/1.1\r\nHost: h\r\n\r\n", 400),              # absolute-form
    (b"GET /status HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    (b"GET /status HTTP/1.1x\r\nHost: h\r\n\r\n", 400),
    (b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 501),
    (b"G(T /status HTTP/1.1\r\nHost: h\r\n\r\n", 400),                      # not a token
    (b"GET /status HTTP/1.1\r\nHost : h\r\n\r\n", 400),                     # space before colon
    (b"GET /status HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),           # obs-fold
    (b"GET /status HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400),           # two Hosts
    (b"GET /status HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400),                # bare LF
    (b"GET /status HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n", 400),           # control char
    (b"GET /status HTTP/1.1\r\nHost: h\r\nX: \xe9\r\n\r\n", 400),           # obs-text
    (b"GET /st%zzatus HTTP/1.1\r\nHost: h\r\n\r\n", 400),                   # bad %-escape
    (b"GET /st%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400),                       # NUL in path
    (b"GET /%ff HTTP/1.1\r\nHost: h\r\n\r\n", 400),                         # not UTF-8
    (b"POST /reload HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /reload HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n", 400),
    (b"POST /reload HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST /reload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"POST /reload HTTP/1.1\r\nHost: h\r\nContent-Length: 999999\r\n\r\n", 413),
])
def test_malformed_requests_are_refused_with_the_right_status(data: bytes, status: int) -> None:
    assert status_of(data) == status


def test_every_part_of_the_request_is_bounded() -> None:
    limits = Limits(max_request_line=64, max_header_bytes=128, max_headers=4, max_body=10,
                    max_query_params=2)
    assert status_of(b"GET /" + b"a" * 100, limits) == 414  # line still incomplete
    assert status_of(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 200 + b"\r\n\r\n",
                     limits) == 431
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 400, limits) == 431
    many = b"".join(b"X%d: v\r\n" % i for i in range(5))
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n", limits) == 431
    assert status_of(b"GET /?a=1&b=2&c=3 HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414
    assert status_of(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits) == 413


def test_bytes_after_the_first_request_are_ignored() -> None:
    parser = RequestParser()
    first = parser.feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n")
    assert first is not None and first.path == "/a"
    assert parser.feed(b"Host: h\r\n\r\n") is None


def test_the_response_closes_and_refuses_header_injection() -> None:
    data = response(404, b'{"error":"x"}', "application/json", (("X-A", "b"),))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Content-Length: 13" in head and b"Connection: close" in head
    assert body == b'{"error":"x"}'
    assert response(200, b"abc", head_only=True).endswith(b"\r\n\r\n")
    with pytest.raises(ValueError):
        response(200, headers=(("X", "a\r\nSet-Cookie: evil"),))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_a_request_or_an_http_error(data: bytes) -> None:
    try:
        parse(data, Limits(max_request_line=200, max_header_bytes=300))
    except HttpError as exc:
        assert exc.status in (400, 413, 414, 431, 501, 505)


_TCHAR = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'")
_NAMES = st.text(_TCHAR, min_size=1, max_size=12)
_VALUES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
_SEGMENTS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF,
                                  blacklist_characters="\x7f"), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]),
       segments=st.lists(_SEGMENTS, min_size=1, max_size=3),
       headers=st.dictionaries(_NAMES.filter(lambda n: n not in (
           "host", "content-length", "transfer-encoding")), _VALUES, max_size=5),
       body=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=10_000))
def test_a_well_formed_request_parses_back_to_what_was_sent_however_it_is_split(
        method: str, segments: list[str], headers: dict[str, str], body: bytes,
        cut: int) -> None:
    from urllib.parse import quote

    path = "/" + "/".join(segments)
    target = "/" + "/".join(quote(s, safe="") for s in segments)
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    parser = RequestParser()
    cut %= len(data)
    first = parser.feed(data[:cut])
    request = first if first is not None else parser.feed(data[cut:])
    assert request is not None
    assert (request.method, request.path, request.body) == (method, path, body)
    for key, value in headers.items():
        assert request.header(key) == value.strip(" \t")
