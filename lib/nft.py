#!/usr/bin/env python3
"""Runs nft commands and scripts in one long-lived process, through libnftables (the
library the nft tool is made of).

Part of the Cirrus agent (src/agent/dataplane/nft-session.ts runs it as one child): the
agent reads its sets and maps every reconcile pass, and each `nft` process costs it a
fork of itself (milliseconds each, more as it grows, dozens per pass). libnftables keeps
the ruleset's cache between commands and refreshes it when the kernel's ruleset
generation changes, whoever changed it.

Reads JSON lines from stdin: {"id": N, "cmd": "list set ip cirrus ports", "json": true}
("cmd" may be a whole script: one transaction, as `nft -f`). Answers one JSON line each:
{"id": N, "rc": 0, "out": "what nft prints", "err": "its error messages"}.
"""
import ctypes
import json
import sys

NFT_CTX_OUTPUT_JSON = 1 << 4

lib = ctypes.CDLL("libnftables.so.1")
lib.nft_ctx_new.restype = ctypes.c_void_p
lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.nft_run_cmd_from_buffer.restype = ctypes.c_int


def context(flags):
    ctx = lib.nft_ctx_new(0)
    lib.nft_ctx_buffer_output(ctx)
    lib.nft_ctx_buffer_error(ctx)
    lib.nft_ctx_output_set_flags(ctx, flags)
    return ctx


def main():
    contexts = {True: context(NFT_CTX_OUTPUT_JSON), False: context(0)}
    for line in sys.stdin:
        req = json.loads(line)
        ctx = contexts[bool(req.get("json"))]
        rc = lib.nft_run_cmd_from_buffer(ctx, req["cmd"].encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        sys.stdout.write(json.dumps({"id": req["id"], "rc": 0 if rc == 0 else 1, "out": out, "err": err}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
