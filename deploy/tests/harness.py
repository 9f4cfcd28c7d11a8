"""The few pieces the deployment tests share: named checks run in order, a summary
line in the form CI reads ("N passed, N failed"), bounded waits, and commands run
with their output kept for the failure message."""

import re
import subprocess
import sys
import time
import traceback


class CheckFailed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


def run(command, *, timeout=600, check=True, env=None, input_text=None):
    """Runs `command` (a list); its stdout. A failure carries the command's output."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, input=input_text)
    if check and done.returncode != 0:
        raise CheckFailed(
            f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def env_names_read(*command):
    """The environment variables a program (or subcommand) reads, from its --help:
    its flags' and those its logging and tracing read (RUST_LOG, LOG_FORMAT, OTEL_*),
    which every --help lists after the flags."""
    help_text = run([*command, "--help"])
    flags = set(re.findall(r"\[env: ([A-Z0-9_]+)", help_text))
    # What logging and tracing read, listed after the flags (platform::telemetry::HELP).
    telemetry = set(re.findall(r"\b(RUST_LOG|LOG_FORMAT|OTEL_[A-Z_]+)\b", help_text))
    return flags | telemetry


def port_map(services):
    """The port numbers of the one port map (`services ports`, from
    platform/src/ports.rs)."""
    return {int(port) for port in re.findall(r"\b(\d{4,5})\b", run([str(services), "ports"]))}


def ports_outside_the_map(text, services):
    """The ports `text` names (`host:port`, `port: N`) that the port map does not have."""
    named = {int(port) for port in re.findall(r"(?::|port: )(\d{4,5})\b", text)}
    return sorted(named - port_map(services))


def eventually(what, probe, *, timeout_s, every_s=0.5):
    """Calls `probe` until it returns something truthy (its answer) or `timeout_s`
    passes; the last exception or falsy answer goes into the failure."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            answer = probe()
            if answer:
                return answer
            last = answer
        except Exception as error:  # noqa: BLE001 - reported below
            last = error
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {timeout_s} s (last: {last!r})")
        time.sleep(every_s)


class Checks:
    """Runs checks in order, stops at the first failure of a check marked
    `essential` (later checks would only fail for the same reason), and prints the
    summary line."""

    def __init__(self, title):
        self.title = title
        self.passed = 0
        self.failed = 0
        self.stopped = False

    def check(self, name, body, *, essential=False):
        if self.stopped:
            self.failed += 1
            print(f"FAIL {name}: not run, an essential check before it failed", flush=True)
            return None
        started = time.monotonic()
        try:
            result = body()
        except CheckFailed as failure:
            self._fail(name, str(failure), essential)
            return None
        except Exception:  # noqa: BLE001 - any error fails the check, with its trace
            self._fail(name, traceback.format_exc(), essential)
            return None
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)
        return result

    def _fail(self, name, why, essential):
        self.failed += 1
        print(f"FAIL {name}\n     " + why.replace("\n", "\n     "), flush=True)
        if essential:
            self.stopped = True

    def finish(self):
        print(f"{self.title}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)
