"""Loaded by every Python process the tests start (conftest puts this folder on PYTHONPATH).

Refuses, and records in $MVTEC2COCO_SOCKET_LOG, any socket connection to a non-loopback address,
so that "offline" is checked in the CLI subprocesses too (pytest-socket guards only the test
process). conftest fails the session if anything was recorded, even if the caller swallowed it.
"""

import ipaddress
import os
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _refuse_if_remote(sock, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = str(address[0])
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if not local:
        log = os.environ.get("MVTEC2COCO_SOCKET_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(f"pid {os.getpid()} tried {host}:{address[1]}\n")
        raise ConnectionRefusedError(f"tests run offline: connection to {host} refused")


def _connect(self, address):
    _refuse_if_remote(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _refuse_if_remote(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex

if os.environ.get("MVTEC2COCO_FAULT"):  # the fault table's injected write errors
    import m2c_faults  # noqa: F401
