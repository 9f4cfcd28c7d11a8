"""The Compose stack, for real: builds the image from binaries built on this host
(target/image/, staged by `make image-context`), brings every service of
compose.yaml up on the Docker engine, and checks through the published port what a
shopper and an operator rely on: the seed's order commits, a blocklisted card is
refused at the fraud step, killing either Raft group's leader container leaves the
shop working and the restarted container catches up, `down` then `up` keeps
the orders, and schemathesis finds the served OpenAPI document true; the `prometheus`
profile's Prometheus (built here from Debian's package) scrapes every process and
counts the orders, and the `observability` profile's configuration is complete.
Everything is torn down afterwards, on failure too.

Run by `make test-containers` (part of `make test`). It never skips: without a
working engine it fails and says why. Figures (build, up-to-healthy, image size)
are printed, not asserted.

Environment: BOOKSTORE_BIN (where the host-built `services` binary is, for the
static check of the environment names), COMPOSE_PROJECT (default bookstore-test).
"""

import json
import os
import random
import secrets
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path

import yaml

from harness import Checks, CheckFailed, env_names_read, eventually, ports_outside_the_map, require, run

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("COMPOSE_PROJECT", "bookstore-test")
IMAGE = f"bookstore:{PROJECT}"
BIN = Path(os.environ.get("BOOKSTORE_BIN", ROOT / "target" / "debug"))
SERVICES = [
    "web", "fraud-detection", "transaction-verification", "suggestions", "order-queue", "payment",
    "books-db-1", "books-db-2", "books-db-3", "order-executor-1", "order-executor-2", "order-executor-3",
]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WEB_PORT = free_port()
PROMETHEUS_PORT = free_port()
ENV = {
    **os.environ,
    "COMPOSE_PROJECT_NAME": PROJECT,
    "BOOKSTORE_BUILD_TARGET": "prebuilt",
    "BOOKSTORE_IMAGE": IMAGE,
    "WEB_PORT": str(WEB_PORT),
    "PROMETHEUS_PORT": str(PROMETHEUS_PORT),
    "CARD_FINGERPRINT_KEY": secrets.token_hex(32),
}
# A developer's settings must not change what is tested. (The processes export
# to the observability profile's collector, which this test does not run: they
# go on without it.)
for name in ("RUST_LOG", "FRAUD_VELOCITY_LIMIT", "FRAUD_VELOCITY_WINDOW_SECS", "ORDER_QUEUE_LEASE_MS",
             "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_FORMAT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
    ENV.pop(name, None)
# Every profile, so that teardown removes what any check started.
PROFILES = ["--profile", "prometheus", "--profile", "observability"]


def compose(*args, timeout=600, check=True):
    return run(["docker", "compose", "--project-directory", str(ROOT), "--env-file", os.devnull, *args],
               timeout=timeout, check=check, env=ENV)


# --- the shop's API -----------------------------------------------------------------

def http(method, path, body=None, timeout=10):
    """(status, JSON body) of a request to the published web port."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{WEB_PORT}{path}", data=data, method=method,
                                     headers={"content-type": "application/json", "accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def luhn_complete(digits):
    """`digits` plus the check digit that makes the number pass Luhn's check."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return digits + str((10 - total % 10) % 10)


SHOPPERS = iter(range(1, 10_000))


def order(card=None):
    """The seed's happy-path order from a shopper and card of its own, so fraud's
    velocity windows (per buyer, per card) never see two orders of one shopper."""
    shopper = next(SHOPPERS)
    expiry = date.today().replace(year=date.today().year + 2)
    return {
        "user": {"name": f"Simon Lawrence {chr(65 + shopper % 26)}{shopper}",
                 "contact": f"simon.lawrence.{shopper}@example.org"},
        "creditCard": {"number": card or luhn_complete(f"471640{random.randrange(10**9):09d}"),
                       "expirationDate": expiry.strftime("%m/%y"), "cvv": "556"},
        "items": [{"id": "4", "name": "The Hunger Games", "quantity": 1},
                  {"id": "1", "name": "Fourth Wing", "quantity": 1}],
        "shippingMethod": "Standard",
        "clientCard": "Premium",
        "termsAccepted": True,
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "state": "Tartumaa", "zip": "51009",
                           "country": "Estonia"},
    }


def place(body=None):
    status, answer = http("POST", "/checkout", body or order())
    require(status == 200 and answer.get("status") == "queued", f"checkout answered {status}: {answer}")
    return answer["orderId"]


def final_status(order_id, timeout_s=60):
    def final():
        status, answer = http("GET", f"/orders/{order_id}")
        return answer if status == 200 and answer.get("status") in ("committed", "aborted") else None
    return eventually(f"order {order_id} final", final, timeout_s=timeout_s)


def require_committed(order_ids):
    for order_id in order_ids:
        answer = final_status(order_id)
        require(answer["status"] == "committed", f"order {order_id} ended {answer}")


def cluster():
    status, answer = http("GET", "/api/cluster")
    require(status == 200, f"/api/cluster answered {status}: {answer}")
    return answer


def leader(group, other_than=None):
    """The id of the replica of `group` ("executors" or "booksDb") that leads."""
    def find():
        leaders = [replica["id"] for replica in cluster()[group]
                   if replica["answers"] and replica["role"] == "leader" and replica["id"] != other_than]
        return leaders[0] if len(leaders) == 1 else None
    return eventually(f"one {group} leader", find, timeout_s=30)


def caught_up(group, replica_id):
    """Waits until `replica_id` answers and has applied as much of the log as its
    group's leader (no order is in flight, so the leader's index stays put)."""
    def same_index():
        replicas = {replica["id"]: replica for replica in cluster()[group]}
        lead = [replica for replica in replicas.values() if replica["role"] == "leader"]
        mine = replicas[replica_id]
        return (mine["answers"] and len(lead) == 1 and mine["lastApplied"] is not None
                and mine["lastApplied"] == lead[0]["lastApplied"])
    eventually(f"{group} replica {replica_id} caught up", same_index, timeout_s=60)


# --- the stack ----------------------------------------------------------------------

def environment_names_are_read():
    """Every variable compose.yaml gives a container is one its program reads (a
    misspelt name would otherwise be ignored in silence)."""
    config = json.loads(compose("config", "--format", "json"))
    for name, service in config["services"].items():
        if service.get("image") != IMAGE:
            continue  # Prometheus, the collector: their own images
        command = service["command"]
        program = BIN / command[0]
        require(program.exists(), f"{program} is missing: build first (make test builds it)")
        read = env_names_read(str(program), *command[1:2])
        unread = set(service.get("environment") or {}) - read
        require(not unread, f"{name} is given {sorted(unread)}, which `{' '.join(command[:2])}` does not read")


def build():
    require((ROOT / "target/image/bin/services").exists(), "target/image/ is empty: run `make image-context` first")
    started = time.monotonic()
    compose("build", "web", timeout=900)
    size = int(run(["docker", "image", "inspect", IMAGE, "--format", "{{.Size}}"]).strip())
    print(f"     image {IMAGE}: {size / 1e6:.0f} MB, built in {time.monotonic() - started:.1f} s", flush=True)
    inside = run(["docker", "run", "--rm", "--entrypoint", "/bin/sh", IMAGE, "-c",
                  "id -u; ls /usr/local/bin; test ! -e /usr/local/cargo && test ! -e /src && echo clean"])
    require(inside.split()[0] != "0", f"the image runs as root: {inside}")
    require("clean" in inside and "services" in inside and "server" in inside, f"unexpected image content: {inside}")


def up():
    started = time.monotonic()
    compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=300)
    print(f"     up to every healthcheck healthy: {time.monotonic() - started:.1f} s", flush=True)


def every_service_healthy():
    states = {}
    for line in compose("ps", "--all", "--format", "json").splitlines():
        if line.strip():
            entry = json.loads(line)
            states[entry["Service"]] = (entry["State"], entry.get("Health", ""))
    missing = set(SERVICES) - set(states)
    require(not missing, f"services missing: {sorted(missing)}")
    sick = {name: state for name, state in states.items() if state != ("running", "healthy")}
    require(not sick, f"not running and healthy: {sick}")


def groups_formed():
    started = time.monotonic()
    leader("executors")
    leader("booksDb")
    print(f"     both Raft groups have a leader {time.monotonic() - started:.1f} s after healthy", flush=True)


state = {}


def happy_path():
    order_id = place()
    answer = final_status(order_id)
    require(answer["status"] == "committed", f"the seed's order ended {answer}")
    state["kept"] = order_id


def blocklisted_card():
    status, answer = http("POST", "/checkout", order(card="4111111111111111"))
    error = (answer or {}).get("error", {})
    require(status == 403, f"a blocklisted card answered {status}: {answer}")
    require(error.get("code") == "card_blocklisted" and error.get("step") == "check_card"
            and error.get("service") == "fraud_detection", f"refused by the wrong step: {answer}")


SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def openapi_tells_the_truth():
    """schemathesis against the served /openapi.json: every check but one, bounded.
    The one left out, positive_data_acceptance, expects every schema-valid order to
    be accepted; a schema cannot say that a card number must pass Luhn's check, an
    expiry must lie ahead, a book must be in the catalog and in stock, or that the
    buyer has not ordered too often, so such orders are refused (400, 403, 409), as
    the document says."""
    run([str(SCHEMATHESIS), "run", f"http://127.0.0.1:{WEB_PORT}/openapi.json",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--max-examples", "25", "--seed", "7", "--workers", "1", "--no-color"],
        timeout=300)


def kill_leader(group, service_prefix):
    def body():
        killed = leader(group)
        compose("kill", f"{service_prefix}-{killed}")
        leader(group, other_than=killed)
        require_committed([place() for _ in range(5)])
        state[group] = killed
    return body


def restart(group, service_prefix):
    def body():
        killed = state[group]
        compose("start", f"{service_prefix}-{killed}")
        caught_up(group, killed)
    return body


def down_then_up():
    compose("down", timeout=120)
    up()
    answer = final_status(state["kept"])
    require(answer["status"] == "committed", f"after down and up the first order is {answer}")
    require_committed([place()])


def replicas_converge():
    """Every replica of both groups answers and has applied the same log."""
    def converged():
        status = cluster()
        return all(len({(replica["answers"], replica["lastApplied"]) for replica in status[group]}) == 1
                   and status[group][0]["answers"] for group in ("executors", "booksDb"))
    eventually("every replica answers with the same last applied index", converged, timeout_s=60)


def prometheus_query(promql):
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as answer:
        result = json.loads(answer.read())
    require(result["status"] == "success", f"{promql}: {result}")
    return result["data"]["result"]


def prometheus_scrapes_every_process():
    """`docker compose --profile prometheus up`: Prometheus, built from Debian's
    package on the base image, scrapes all twelve processes and counts the orders."""
    started = time.monotonic()
    compose("--profile", "prometheus", "up", "--detach", "--wait", "--wait-timeout", "300", "prometheus",
            timeout=900)
    print(f"     prometheus built and healthy in {time.monotonic() - started:.1f} s", flush=True)
    require_committed([place()])

    def value(promql):
        series = prometheus_query(promql)
        return float(series[0]["value"][1]) if len(series) == 1 else None

    eventually("every process scraped and up", lambda: value('count(up{job="bookstore"} == 1)') == 12, timeout_s=60)
    processes = {series["metric"]["process"] for series in prometheus_query("process_start_time_seconds")}
    require(len(processes) == 12 and {"web", "books_db-1", "order_executor-3"} <= processes,
            f"processes labelled {sorted(processes)}")
    eventually("the orders counted",
               lambda: (value('sum(order_executor_orders_finished_total{outcome="committed"})') or 0) >= 2
               and (value('sum(checkouts_total{outcome="approved"})') or 0) >= 1, timeout_s=60)
    # Out of the way of the checks that take the shop down and up.
    compose("--profile", "prometheus", "rm", "--stop", "--force", "prometheus", timeout=120)


def observability_profile_is_complete():
    """`docker compose --profile observability config`: the collector's image, its
    ports, and the dashboards and data sources it mounts, which exist."""
    config = json.loads(compose(*PROFILES, "config", "--format", "json"))
    lgtm = config["services"].get("lgtm")
    require(lgtm is not None and lgtm["image"].startswith("grafana/otel-lgtm:"), "no grafana/otel-lgtm service")
    published = {int(port["published"]) for port in lgtm.get("ports", [])}
    require({3000, 4317, 4318} <= published, f"lgtm publishes {published}")
    for volume in lgtm.get("volumes", []):
        require(Path(volume["source"]).exists(), f"lgtm mounts {volume['source']}, which does not exist")
    dashboards = [volume for volume in lgtm["volumes"] if volume["target"].endswith("/dashboards/bookstore")]
    require(dashboards and any(Path(dashboards[0]["source"]).glob("*.json")), "no dashboards mounted")
    for name, service in config["services"].items():
        if service.get("image") == IMAGE:
            endpoint = (service.get("environment") or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT")
            require(endpoint == "http://lgtm:4317", f"{name} exports to {endpoint}")
    # Grafana is not run here (its image needs a registry): what it would read is
    # checked instead. Every panel names a provisioned data source, and a latency
    # exemplar's label (the shop's `trace_id`) opens Tempo.
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {source["uid"]: source for source in sources["datasources"]}
    require({"prometheus", "tempo", "loki"} <= set(uids), f"data sources {sorted(uids)}")
    require(uids["prometheus"]["url"] == "http://prometheus:9090", "Grafana reads another Prometheus")
    exemplars = uids["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    require(exemplars == [{"name": "trace_id", "datasourceUid": "tempo"}], f"exemplar links {exemplars}")
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            require(panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']} names no provisioned source")


def teardown():
    compose(*PROFILES, "down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=180, check=False)


def logs():
    print(compose("logs", "--no-color", "--tail", "40", timeout=60, check=False)[-12000:], flush=True)


def ports_are_the_port_map():
    """compose.yaml's ports are those of the one port map (platform/src/ports.rs)."""
    stray = ports_outside_the_map((ROOT / "compose.yaml").read_text(), BIN / "services")
    require(not stray, f"compose.yaml names ports {stray}, which `services ports` does not list")


def main():
    checks = Checks("containers")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run(["docker", "info"], timeout=60)
    except (CheckFailed, OSError) as no_engine:
        print(f"FAIL the Docker engine: {no_engine}", flush=True)
        checks.failed += 1
        checks.finish()
    teardown()
    try:
        checks.check("every variable compose.yaml sets is one its program reads", environment_names_are_read)
        checks.check("its ports are the port map's (services ports)", ports_are_the_port_map)
        checks.check("the image builds from host binaries, without toolchain or source, as non-root",
                     build, essential=True)
        checks.check("docker compose up: every healthcheck passes", up, essential=True)
        checks.check("all twelve services run and are healthy", every_service_healthy)
        checks.check("both Raft groups elect a leader", groups_formed, essential=True)
        checks.check("the seed's order is approved and committed", happy_path)
        checks.check("a blocklisted card is refused at the fraud step (403)", blocklisted_card)
        checks.check("the OpenAPI document matches what the server accepts and answers (schemathesis)",
                     openapi_tells_the_truth)
        checks.check("the prometheus profile: Debian's Prometheus scrapes every process and counts the orders",
                     prometheus_scrapes_every_process)
        checks.check("the observability profile names the collector, its ports, dashboards and data sources",
                     observability_profile_is_complete)
        checks.check("kill the executor leader's container: orders still commit",
                     kill_leader("executors", "order-executor"))
        checks.check("start it again: it catches up", restart("executors", "order-executor"))
        checks.check("kill the books_db leader's container: orders still commit",
                     kill_leader("booksDb", "books-db"))
        checks.check("start it again: it catches up", restart("booksDb", "books-db"))
        checks.check("down then up keeps the orders", down_then_up)
        checks.check("every replica of both groups converges", replicas_converge)
        if checks.failed:
            logs()
    finally:
        teardown()
        run(["docker", "image", "rm", "--force", IMAGE], check=False)
    checks.finish()


if __name__ == "__main__":
    main()
