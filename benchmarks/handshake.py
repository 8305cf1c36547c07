"""TLS 1.3 handshakes per second, client and server in one process (no network, no QUIC).

The figure is the best of three slices, so that other work on the machine
skews it less.

Each handshake is a full exchange of CRYPTO bytes between a TlsClient and a
TlsServer in memory, including certificate chain verification against a CA
(cryptography.x509.verification) on the client.  Rows:

- every cipher suite x group with an ECDSA P-256 certificate,
- the other certificate types (P-384, RSA-2048 PSS, Ed25519) with x25519 + AES-128-GCM,
- a HelloRetryRequest (client offers x25519, server takes only P-256),
- insecure mode (verify_peer=False): the cost of chain verification,
- PSK resumption (psk_dhe_ke) and resumption with 0-RTT accepted.

    python benchmarks/handshake.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import (
    NamedGroup,
    SessionTicket,
    TicketStore,
    TlsClient,
    TlsConfig,
    TlsServer,
)
from tquic.crypto.tls.certs import certificate_to_pem, generate_ca, issue_certificate
from tquic.crypto.tls.signatures import PrivateKey


def pump(client: TlsClient, server: TlsServer) -> None:
    for _ in range(10):
        moved = False
        for epoch, data in client.pop_output():
            server.receive(epoch, data)
            moved = True
        for epoch, data in server.pop_output():
            client.receive(epoch, data)
            moved = True
        if not moved:
            break
    if not (client.handshake_complete and server.handshake_complete):
        raise RuntimeError("handshake did not complete")


def rate(fn: Callable[[], None], seconds: float, rounds: int = 3) -> float:
    """Best handshakes/s over ``rounds`` slices of ``seconds`` (other load only slows us)."""
    fn()  # warm-up (and trust-store cache)
    best = 0.0
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            fn()
            n += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run (0.3 s per row)")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 2.0

    ca, ca_key = generate_ca()
    ca_pem = certificate_to_pem(ca)
    leaves: dict[str, tuple[object, PrivateKey]] = {
        kind: issue_certificate(ca, ca_key, key_type=kind)
        for kind in ("ec", "ec384", "rsa", "ed25519")
    }

    def server_cfg(kind: str = "ec", **kw: object) -> TlsConfig:
        cert, key = leaves[kind]
        return TlsConfig(
            is_client=False,
            alpn_protocols=("h3",),
            certificate_chain=(cert,),  # type: ignore[arg-type]
            private_key=key,
            **kw,  # type: ignore[arg-type]
        )

    def client_cfg(**kw: object) -> TlsConfig:
        base: dict[str, object] = {
            "is_client": True,
            "alpn_protocols": ("h3",),
            "server_name": "localhost",
            "cadata": ca_pem,
        }
        base.update(kw)
        return TlsConfig(**base)  # type: ignore[arg-type]

    def full(ccfg: TlsConfig, scfg: TlsConfig) -> Callable[[], None]:
        def run() -> None:
            client = TlsClient(ccfg, b"tp")
            server = TlsServer(scfg, b"tp")
            client.start()
            pump(client, server)

        return run

    rows: list[tuple[str, str, str, str, Callable[[], None]]] = []
    for suite in CipherSuite:
        for group in NamedGroup:
            rows.append(
                (
                    suite.name,
                    group.name,
                    "ecdsa P-256",
                    "full",
                    full(client_cfg(cipher_suites=(suite,), groups=(group,)), server_cfg()),
                )
            )
    aes, x = CipherSuite.AES_128_GCM_SHA256, NamedGroup.x25519
    for kind, label in (("ec384", "ecdsa P-384"), ("rsa", "rsa-pss 2048"), ("ed25519", "ed25519")):
        rows.append(
            (
                aes.name,
                x.name,
                label,
                "full",
                full(client_cfg(cipher_suites=(aes,)), server_cfg(kind)),
            )
        )
    rows.append(
        (
            aes.name,
            "x25519→secp256r1",
            "ecdsa P-256",
            "HRR",
            full(client_cfg(cipher_suites=(aes,)), server_cfg(groups=(NamedGroup.secp256r1,))),
        )
    )
    rows.append(
        (
            aes.name,
            x.name,
            "ecdsa P-256",
            "no verify",
            full(
                client_cfg(cipher_suites=(aes,), verify_peer=False, server_name=None, cadata=None),
                server_cfg(),
            ),
        )
    )

    # Plain resumption reuses one ticket; the 0-RTT row needs a fresh ticket
    # per handshake, because the store accepts early data once per ticket.
    store = TicketStore()
    scfg_early = server_cfg(enable_early_data=True)

    def fresh_ticket() -> SessionTicket:
        client = TlsClient(client_cfg(cipher_suites=(aes,), enable_early_data=True), b"tp")
        server = TlsServer(scfg_early, b"tp", store)
        client.start()
        pump(client, server)
        server.send_session_ticket()
        for epoch, data in server.pop_output():
            client.receive(epoch, data)
        return client.new_session_tickets[0]

    ticket = fresh_ticket()
    resume_cfg = client_cfg(cipher_suites=(aes,), session_ticket=ticket)

    def resume() -> None:
        client = TlsClient(resume_cfg, b"tp")
        server = TlsServer(scfg_early, b"tp", store)
        client.start()
        pump(client, server)
        if not client.session_resumed:
            raise RuntimeError("not resumed")

    rows.append((aes.name, x.name, "(PSK)", "resumed", resume))
    tickets = [fresh_ticket() for _ in range(int(4000 * seconds) + 50)]
    early_cfgs = iter(
        [dataclasses.replace(resume_cfg, session_ticket=t, enable_early_data=True) for t in tickets]
    )

    def early() -> None:
        client = TlsClient(next(early_cfgs), b"tp")
        server = TlsServer(scfg_early, b"tp", store)
        client.start()
        pump(client, server)
        if not client.early_data_accepted:
            raise RuntimeError("0-RTT not accepted")

    rows.append((aes.name, x.name, "(PSK)", "resumed+0-RTT", early))

    header = (
        f"{'suite':<26} {'group':<18} {'certificate':<13} {'kind':<14} {'hs/s':>7} {'ms/hs':>7}"
    )
    print(header)
    print("-" * len(header))
    for suite_name, group_name, cert_name, kind, fn in rows:
        try:
            per_s = rate(fn, seconds)
        except StopIteration:
            print(
                f"{suite_name:<26} {group_name:<18} {cert_name:<13} {kind:<14} (ran out of tickets)"
            )
            continue
        print(
            f"{suite_name:<26} {group_name:<18} {cert_name:<13} {kind:<14} "
            f"{per_s:>7.0f} {1000 / per_s:>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
