"""``tquic server`` as a static web server, against a running server over both ALPNs:
content types, index files, HEAD, ranges, conditional GET, the status codes of the
unhappy paths (400, 404, 405, 414, 416), traversal attempts that never read the canary
file beside the root, hq-interop refusals that end the stream at once, and the access
log (issues #13 and #20)."""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from site_client import Site, h3_requests, hq_requests, raw_h3, running_site, wait_for_log

from tquic.cli.transport import connection_line

CANARY = b"CANARY-outside-the-root-never-served\n"
BIG = os.urandom(700_000)  # streamed (over the 256 KiB inline limit)
TRAVERSALS = ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
              "/a.txt/../../../../etc/hostname", "//etc/passwd", "/../canary.txt",
              "/%2e%2e/canary.txt", "/sub/../../canary.txt", "/%2E%2E%2Fcanary.txt",
              "/link-out", "/sub/..%2f..%2fcanary.txt"]


@pytest.fixture(scope="module")
def site(cert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    top = tmp_path_factory.mktemp("site")
    (top / "canary.txt").write_bytes(CANARY)  # beside the root: must never be served
    root = top / "root"
    (root / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "index.html").write_text('<!DOCTYPE html><meta charset="utf-8"><p>home</p>\n')
    (root / "a.txt").write_bytes(b"0123456789abcdefghij")
    (root / "style.css").write_text("p { color: red }\n")
    (root / "data.json").write_text("{}\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "link-out").symlink_to(top / "canary.txt")
    with running_site(cert_dir, root, top / "access.log") as running:
        yield running


def test_content_type_from_extension_index_for_directories_and_head(site: Site) -> None:
    index, css, js, big, head, sub, sub_slash, empty, away = h3_requests(site.port, [
        ("GET", "/", {}), ("GET", "/style.css", {}), ("GET", "/data.json", {}),
        ("GET", "/big.bin", {}), ("HEAD", "/a.txt", {}), ("GET", "/sub", {}),
        ("GET", "/sub/", {}), ("GET", "/empty/", {}), ("GET", "//example.com/..//sub?q", {})])
    assert index.status == 200 and index.body.endswith(b"<p>home</p>\n")
    assert index.header("content-type") == b"text/html; charset=utf-8"
    assert css.header("content-type") == b"text/css; charset=utf-8"
    assert js.header("content-type") == b"application/json"
    assert big.body == BIG and big.header("content-type") == b"application/octet-stream"
    assert head.status == 200 and head.body == b"" and head.header("content-length") == b"20"
    assert head.header("content-type") == b"text/plain; charset=utf-8"
    # A directory without its slash moves there, so the page's relative links resolve.
    assert sub.status == 301 and sub.header("location") == b"/sub/"
    assert away.status == 301 and away.header("location") == b"/sub/?q"  # not //example.com
    assert sub_slash.status == 200 and sub_slash.body == b"<p>sub</p>\n"
    assert empty.status == 404  # no index.html and no --list-dirs: no listing


def test_single_byte_ranges_206_416_and_several_ranges_get_the_whole_file(site: Site) -> None:
    (middle, suffix, open_end, past, several, stale, big, head) = h3_requests(site.port, [
        ("GET", "/a.txt", {"range": "bytes=10-14"}), ("GET", "/a.txt", {"range": "bytes=-3"}),
        ("GET", "/a.txt", {"range": "bytes=15-"}), ("GET", "/a.txt", {"range": "bytes=20-"}),
        ("GET", "/a.txt", {"range": "bytes=0-1,5-6"}),
        ("GET", "/a.txt", {"range": "bytes=0-1", "if-range": '"stale"'}),
        ("GET", "/big.bin", {"range": "bytes=300000-"}),
        ("HEAD", "/a.txt", {"range": "bytes=0-1"})])
    assert middle.status == 206 and middle.body == b"abcde"
    assert middle.header("content-range") == b"bytes 10-14/20"
    assert middle.header("content-length") == b"5"
    assert suffix.status == 206 and suffix.body == b"hij"
    assert open_end.status == 206 and open_end.body == b"fghij"
    assert past.status == 416 and past.header("content-range") == b"bytes */20"
    assert several.status == 200 and several.body == b"0123456789abcdefghij"
    assert stale.status == 200 and len(stale.body) == 20  # If-Range no longer matches
    assert big.status == 206 and big.body == BIG[300000:]  # streamed from the offset
    assert head.status == 200  # RFC 9110 §14.2: Range is defined for GET only


def test_conditional_get_answers_304_to_a_matching_etag_or_date(site: Site) -> None:
    [first] = h3_requests(site.port, [("GET", "/a.txt", {})])
    etag, modified = first.header("etag"), first.header("last-modified")
    assert etag is not None and modified is not None
    mtime = (site.root / "a.txt").stat().st_mtime
    assert email.utils.parsedate_to_datetime(modified.decode()).timestamp() == int(mtime)
    earlier = email.utils.formatdate(mtime - 3600, usegmt=True)
    same, star, other, since, old, both = h3_requests(site.port, [
        ("GET", "/a.txt", {"if-none-match": etag.decode()}),
        ("GET", "/a.txt", {"if-none-match": "*"}),
        ("GET", "/a.txt", {"if-none-match": '"other"'}),
        ("GET", "/a.txt", {"if-modified-since": modified.decode()}),
        ("GET", "/a.txt", {"if-modified-since": earlier}),
        # RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        ("GET", "/a.txt", {"if-none-match": '"other"', "if-modified-since": modified.decode()})])
    for not_modified in (same, star, since):
        assert not_modified.status == 304 and not_modified.body == b""
        assert not_modified.header("etag") == etag
    for changed in (other, old, both):
        assert changed.status == 200 and changed.body == b"0123456789abcdefghij"


def test_other_methods_get_405_with_allow_and_long_paths_414(site: Site) -> None:
    post, delete, long = h3_requests(site.port, [
        ("POST", "/a.txt", {}), ("DELETE", "/a.txt", {}), ("GET", "/" + "x" * 9000, {})])
    for refused in (post, delete):
        assert refused.status == 405 and refused.header("allow") == b"GET, HEAD"
    assert long.status == 414


def test_malformed_pseudo_headers_get_400(site: Site) -> None:
    ok = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/a.txt")]
    sections = [
        ok,
        [(b":method", b"GET"), (b":authority", b"x"), (b":path", b"/a.txt")],  # no :scheme
        [*ok, (b":method", b"GET")],  # repeated pseudo-header
        [ok[0], (b"accept", b"*/*"), *ok[1:]],  # pseudo-header after a regular field
        [*ok, (b":status", b"200")],  # response pseudo-header in a request
        [*ok[:3], (b":path", b"a.txt")],  # :path not starting with /
        [*ok, (b"Accept", b"*/*")],  # uppercase field name (§4.2)
    ]
    before = len(site.log_lines())
    answers = raw_h3(site.port, sections)
    assert dict(answers[0][0])[b":status"] == b"200"
    for headers, body in answers[1:]:
        assert dict(headers)[b":status"] == b"400", headers
        assert body.startswith(b"malformed request:")
    lines = wait_for_log(site, before + len(sections))[before:]
    assert sum(" h3 - - 400 " in line for line in lines) == len(sections) - 1


def test_traversal_never_reads_outside_the_root_over_both_alpns(site: Site) -> None:
    answers = h3_requests(site.port, [("GET", path, {}) for path in TRAVERSALS])
    for path, answer in zip(TRAVERSALS, answers, strict=True):
        assert answer.status == 404, path
        assert b"CANARY" not in answer.body and b"root:x:0:0" not in answer.body
    for path, result in zip(TRAVERSALS, hq_requests(site.port, TRAVERSALS), strict=True):
        assert result.reset_code == 404 and result.data == b"", path


def test_hq_refusals_end_the_stream_at_once_with_a_documented_code(site: Site) -> None:
    before = len(site.log_lines())
    baseline, missing, outside, empty_dir, long = hq_requests(
        site.port, ["/1", "/missing.txt", "/../canary.txt", "/empty/", "/" + "y" * 9000])
    assert baseline.reset_code is None and baseline.data == b"\x00"
    assert (missing.reset_code, outside.reset_code, empty_dir.reset_code) == (404, 404, 404)
    assert long.reset_code == 414
    # One round trip, as a served file takes -- not a wait for the idle timeout.
    for refused in (missing, outside, empty_dir, long):
        assert refused.seconds < baseline.seconds + 0.25, (refused, baseline)
    lines = wait_for_log(site, before + 5)[before:]
    assert len(lines) == 5  # one line per request, refused or not
    assert re.search(r" hq-interop GET /missing\.txt 404 0 [\d.]+ms$", lines[1])


def test_hq_serves_index_for_directories_and_the_same_files(site: Site) -> None:
    index, sub, small = hq_requests(site.port, ["/", "/sub", "/a.txt"])
    assert index.data.endswith(b"<p>home</p>\n") and index.reset_code is None
    assert sub.data == b"<p>sub</p>\n"  # hq has no redirects: the index at once
    assert small.data == b"0123456789abcdefghij"


def test_access_log_has_one_line_per_request_with_its_fields(site: Site) -> None:
    before = len(site.log_lines())
    h3_requests(site.port, [("GET", "/a.txt", {}), ("GET", "/big.bin", {}),
                            ("GET", "/nope", {})])
    hq_requests(site.port, ["/a.txt"])
    lines = wait_for_log(site, before + 4)[before:]
    assert len(lines) == 4, lines
    pattern = (r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1:\d+ (h3|hq-interop) "
               r"GET (\S+) (\d{3}) (\d+) [\d.]+ms$")
    fields = [re.match(pattern, line) for line in lines]
    assert all(fields), lines
    seen = {(m.group(1), m.group(2), m.group(3), m.group(4)) for m in fields if m}
    assert ("h3", "/a.txt", "200", "20") in seen
    assert ("h3", "/big.bin", "200", str(len(BIG))) in seen  # counted as streamed
    assert ("hq-interop", "/a.txt", "200", "20") in seen
    assert any(k[1] == "/nope" and k[2] == "404" for k in seen)


def test_list_dirs_lists_and_quiet_silences_the_log(cert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a b.txt").write_bytes(b"x")
    (root / "docs" / "<tag>.txt").write_bytes(b"y")
    with running_site(cert_dir, root, tmp_path / "log", "--list-dirs", "--quiet") as quiet:
        listing, file = h3_requests(quiet.port, [("GET", "/docs/", {}),
                                                 ("GET", "/docs/a%20b.txt", {})])
        [hq_listing] = hq_requests(quiet.port, ["/docs/"])
    assert listing.status == 200 and listing.header("content-type") == b"text/html; charset=utf-8"
    assert b'<a href="a%20b.txt">a b.txt</a>' in listing.body
    assert b"&lt;tag&gt;.txt" in listing.body and b"<tag>" not in listing.body
    assert file.body == b"x"
    assert hq_listing.data == listing.body
    assert (tmp_path / "log").read_text() == ""


def test_summary_rtt_is_the_minimum_over_paths_that_measured_one() -> None:
    # After a failover, a fresh path has no RTT sample (min unset, smoothed = 333 ms guess).
    entry = {"server": "s:1", "alpn": "h3", "quic_version": "v1", "multipath": True, "paths": [
        {"min_rtt_ms": None, "srtt_ms": 333.0, "packets_sent": 5, "packets_lost": 0},
        {"min_rtt_ms": 20.5, "srtt_ms": 24.0, "packets_sent": 90, "packets_lost": 2},
        {"min_rtt_ms": 10.0, "srtt_ms": 30.0, "packets_sent": 10, "packets_lost": 1}]}
    line = connection_line(entry)
    assert "rtt 10.0/24.0 ms (min/smoothed)" in line and "inf" not in line
    entry["paths"] = entry["paths"][:1]
    assert "rtt not measured" in connection_line(entry)
