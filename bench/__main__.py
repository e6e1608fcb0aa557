"""``python -m bench <scenario>``: the load harness, and ``report`` to render its results."""

from __future__ import annotations

import argparse

import uvloop

from bench import chat, report, roster, sfu


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    chat.add_arguments(scenarios.add_parser("chat", help="WebSocket connections and chat fan-out"))
    sfu.add_arguments(
        scenarios.add_parser("sfu", help="SFU forwarding with synthetic WebRTC peers")
    )
    roster.add_arguments(
        scenarios.add_parser("roster", help="applying a journal's whole-school roster")
    )
    report.add_arguments(
        scenarios.add_parser("report", help="render results JSON files as one HTML page")
    )
    args = parser.parse_args()
    if args.scenario == "chat":
        uvloop.run(chat.main(args))
    elif args.scenario == "sfu":
        sfu.main(args)
    elif args.scenario == "roster":
        uvloop.run(roster.main(args))
    elif args.scenario == "report":
        report.main(args)


if __name__ == "__main__":
    main()
