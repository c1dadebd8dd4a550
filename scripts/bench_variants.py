#!/usr/bin/env python3
"""Runs the shared harness (../shared/bench/bench.py) with several pixelguard builds or configs
as servers of ONE run, beside its peers (e.g. the ceiling), so that their figures compare
within a run. The harness takes one --start-cmd; this driver adds each `--variant NAME=CMD` as
a server of its own, started, pinned, checked and measured by the harness's own code (its
start_server is called once per variant with that variant's command). Every other argument
goes to the harness unchanged. Used by scripts/bench-variants.sh."""
import os
import sys

sys.path.insert(0, os.environ.get("BENCH", "../shared/bench"))
import bench  # noqa: E402  (the shared harness, stdlib only)

PREFIX = "@variant:"


def main(argv):
    variants, rest = {}, []
    it = iter(argv)
    for x in it:
        if x == "--variant":
            name, _, cmd = next(it).partition("=")
            if not name or not cmd:
                sys.exit("bench_variants.py: --variant needs NAME=CMD")
            variants[name] = cmd
        else:
            rest.append(x)
    if not variants:
        sys.exit("bench_variants.py: give at least one --variant NAME=CMD")

    parse_args, start_server = bench.parse_args, bench.start_server

    def parse(args):
        a = parse_args(args)
        a.peers = list(a.peers) + [PREFIX + n for n in variants]
        return a

    def start(a, runner, rundir, peer, port, size, data):
        if not peer.startswith(PREFIX):
            return start_server(a, runner, rundir, peer, port, size, data)
        a.name = peer[len(PREFIX):]
        a.start_cmd = variants[a.name]
        try:
            return start_server(a, runner, rundir, "@start", port, size, data)
        finally:
            a.start_cmd = None

    bench.parse_args, bench.start_server = parse, start
    return bench.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
