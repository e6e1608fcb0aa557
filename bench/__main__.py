"""``python -m bench <scenario>``: the load harness."""

from __future__ import annotations

import argparse

import uvloop

from bench import chat, sfu


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    chat.add_arguments(scenarios.add_parser("chat", help="WebSocket connections and chat fan-out"))
    sfu.add_arguments(
        scenarios.add_parser("sfu", help="SFU forwarding with synthetic WebRTC peers")
    )
    args = parser.parse_args()
    if args.scenario == "chat":
        uvloop.run(chat.main(args))
    elif args.scenario == "sfu":
        sfu.main(args)


if __name__ == "__main__":
    main()
