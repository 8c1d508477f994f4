#!/usr/bin/env python3
"""Prints an input of the `ingress` or `core_feed` fuzz target as the program it encodes: the
operations and the chunks of modem output they feed.

    python3 fuzz/show_input.py ingress|core_feed FILE
"""

import sys

INGRESS = {1: "expect_prompt", 2: "expect_read", 3: "expect_payload_echo", 4: "push marks",
           5: "enter/leave transparent, reset", 6: "expect_escape", 7: "flush_held"}
CORE = {1: "begin", 2: "end/abandon", 3: "payload_written", 4: "socket slot", 5: "modem flags",
        6: "flush_transparent", 7: "sink capacity"}
KINDS = ["Plain", "Send", "Read", "Switch", "Connect"]
PREFIXES = ["NO_INFO", '""', "+QIACT:", "+QIRD:", "+QISTATE:", "+QICSGP:", "+CREG:"]


def chunk_len(arg):
    return ((arg % 8) + 1) << ((arg // 8) * 2)


def main():
    target, path = sys.argv[1], sys.argv[2]
    core = target == "core_feed"
    data = open(path, "rb").read()
    n = data[0] if data else 0
    program, stream = data[1:1 + n], data[1 + n:]
    pos, i = 0, 0
    while i < len(program):
        c = program[i]
        op, arg = c >> 5, c & 31
        i += 1
        if op == 0:
            end = min(pos + chunk_len(arg), len(stream))
            print(f"feed {stream[pos:end]!r}")
            pos = end
            continue
        name = (CORE if core else INGRESS)[op]
        extra = ""
        if core and op in (1, 4):
            p = program[i] if i < len(program) else 0
            i += 1
            extra = f" param={p}"
            if op == 1:
                extra += f" ({KINDS[arg % 5]}, prefix {PREFIXES[arg // 5]})"
        print(f"{name} arg={arg}{extra}")
    print(f"feed (rest) {stream[pos:]!r}")


if __name__ == "__main__":
    main()
