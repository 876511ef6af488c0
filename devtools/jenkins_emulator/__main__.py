"""python -m devtools.jenkins_emulator --port 8080 --config devtools/jenkins_emulator/demo.json"""

import argparse
import signal
import sys

from devtools.jenkins_emulator import JenkinsEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Jenkins emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--config", required=True, help="JSON file: users, jobs")
    parser.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="Post the Notification plugin's JSON here when a build starts and ends "
        "(repeatable; adds to the config's notifications).",
    )
    args = parser.parse_args()
    try:
        emulator = JenkinsEmulator(args.config, args.host, args.port)
        emulator.emulator.notifier.endpoints += [url for url in args.notify if url]
        emulator.start()
    except (OSError, ValueError) as exc:
        sys.exit(f"jenkins emulator: {exc}")
    print(f"Jenkins emulator on {emulator.url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
