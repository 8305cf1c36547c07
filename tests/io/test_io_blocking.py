"""The blocking socket-like API (tquic.socket): connect/send/recv/shutdown/close, options,
timeouts, listen/accept, all on threads with no asyncio in sight."""

from __future__ import annotations

import threading

import pytest

import tquic
from tquic.core.config import QuicConfiguration
from tquic.io.blocking import QuicSocket

MESSAGE = b"hello " + b"world" * 1000


def _listener(server_config: QuicConfiguration) -> QuicSocket:
    listener = tquic.socket(server_config)
    listener.settimeout(10.0)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def test_socket_echo_roundtrip(server_config: QuicConfiguration,
                               client_config: QuicConfiguration) -> None:
    listener = _listener(server_config)
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve_one() -> None:
        try:
            conn, _addr = listener.accept()
            with conn:
                data = b""
                while len(data) < len(MESSAGE):
                    data += conn.recv(65536)
                conn.sendall(data.upper())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        with tquic.socket(client_config) as sock:
            sock.settimeout(10.0)
            sock.setsockopt("cc", "newreno")
            assert sock.getsockopt("congestion_control") == "newreno"
            sock.connect(("127.0.0.1", port))
            assert sock.getpeername() == ("127.0.0.1", port)
            sock.sendall(MESSAGE[:6])
            sock.send(MESSAGE[6:])
            reply = b""
            while len(reply) < len(MESSAGE):
                reply += sock.recv(4096)
            assert reply == MESSAGE.upper()
            assert sock.recv(10) == b""  # the server closed: FIN reads as end of stream
    finally:
        thread.join(15)
        listener.close()
    assert not errors


def test_recv_times_out(server_config: QuicConfiguration,
                        client_config: QuicConfiguration) -> None:
    listener = _listener(server_config)
    try:
        sock = tquic.create_connection(("127.0.0.1", listener.getsockname()[1]), timeout=10.0,
                                       config=client_config)
        with sock:
            sock.send(b"x")  # the stream reaches the server, which never answers
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(10)
    finally:
        listener.close()


def test_unknown_option_and_unconnected_use_are_errors() -> None:
    sock = tquic.socket()
    with pytest.raises(OSError, match="unknown option"):
        sock.setsockopt("no_such_option", 1)
    with pytest.raises(OSError, match="not connected"):
        sock.recv(1)
    sock.setsockopt("insecure", True)
    assert sock.getsockopt("verify_peer") is False
    sock.close()


def test_connect_to_nothing_times_out(client_config: QuicConfiguration) -> None:
    sock = tquic.socket(client_config)
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.connect(("127.0.0.1", 9))  # discard port: nobody speaks QUIC there
    sock.close()


def test_socket_client_migrates_between_messages(server_config: QuicConfiguration,
                                                 client_config: QuicConfiguration) -> None:
    listener = _listener(server_config)
    port = listener.getsockname()[1]
    peers: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def serve_one() -> None:
        try:
            conn, _addr = listener.accept()
            with conn:
                for _ in range(2):
                    data = b""
                    while len(data) < len(MESSAGE):
                        data += conn.recv(65536)
                    peers.append(conn.getpeername())
                    conn.sendall(data.upper())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        with tquic.socket(client_config) as sock:
            sock.settimeout(10.0)
            sock.connect(("127.0.0.1", port))
            for round_number in range(2):
                if round_number == 1:
                    new_local = sock.migrate("127.0.0.2")
                    assert sock.getsockname() == new_local and new_local[0] == "127.0.0.2"
                sock.sendall(MESSAGE)
                reply = b""
                while len(reply) < len(MESSAGE):
                    reply += sock.recv(65536)
                assert reply == MESSAGE.upper()
    finally:
        thread.join(15)
        listener.close()
    assert not errors
    assert peers[0][0] != "127.0.0.2" and peers[1][0] == "127.0.0.2"
